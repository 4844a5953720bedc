//! QR codes: made for our payloads (a SMART Health Card in the two segments its spec asks for,
//! at most version 22, error correction L), drawn as PNG or SVG, and read back from PNG images
//! (ours or anybody's).

pub use qrcodegen::QrCode;
use qrcodegen::{QrCodeEcc, QrSegment, Version};

use crate::CertError;

const TOO_LONG: CertError = CertError::new(
    "qr.too_long",
    "QRコード1つに収まりません",
    "does not fit one QR code",
);
const NOT_SHC: CertError = CertError::new(
    "qr.not_shc",
    "shc:/ で始まる数字列ではありません",
    "not a shc:/ text",
);
const NOT_ALPHANUMERIC: CertError = CertError::new(
    "qr.not_alphanumeric",
    "QRコードの英数字モードで表せない文字があります",
    "has characters the QR alphanumeric mode cannot hold",
);
const IMAGE: CertError = CertError::new(
    "qr.image",
    "画像を読めません(PNG のみ)",
    "cannot read the image (PNG only)",
);
const NONE_FOUND: CertError = CertError::new(
    "qr.none",
    "画像にQRコードが見つかりません",
    "no QR code found in the image",
);

/// The largest image read, in pixels per side (bounds the memory a hostile image can take).
const MAX_SIDE: u32 = 8_000;

fn encode(segments: &[QrSegment], ecc: QrCodeEcc, max: u8) -> Result<QrCode, CertError> {
    // The smallest version that fits, the error correction asked for (not boosted), and the
    // mask the standard's penalty rules choose (Nayuki's qrcodegen).
    QrCode::encode_segments_advanced(segments, ecc, Version::MIN, Version::new(max), None, false)
        .map_err(|_| TOO_LONG)
}

/// A SMART Health Card's `shc:/DIGITS` text as its spec asks: a byte segment `shc:/`, then a
/// numeric segment, the smallest version up to 22, error correction L.
pub fn shc(text: &str) -> Result<QrCode, CertError> {
    let digits = text.strip_prefix("shc:/").ok_or(NOT_SHC)?;
    if !QrSegment::is_numeric(digits) {
        return Err(NOT_SHC);
    }
    encode(
        &[
            QrSegment::make_bytes(b"shc:/"),
            QrSegment::make_numeric(digits),
        ],
        QrCodeEcc::Low,
        22,
    )
}

/// An EU DCC's `HC1:` text (Base45 is the QR alphanumeric alphabet): one alphanumeric
/// segment, error correction Q as HCERT recommends.
pub fn dcc(text: &str) -> Result<QrCode, CertError> {
    if !QrSegment::is_alphanumeric(text) {
        return Err(NOT_ALPHANUMERIC);
    }
    encode(
        &[QrSegment::make_alphanumeric(text)],
        QrCodeEcc::Quartile,
        40,
    )
}

/// Any text in byte mode (a VDS-NC JSON document), error correction M, the smallest version.
pub fn bytes(text: &str) -> Result<QrCode, CertError> {
    encode(
        &[QrSegment::make_bytes(text.as_bytes())],
        QrCodeEcc::Medium,
        40,
    )
}

/// The QR version (1-40) of a code.
pub fn version(code: &QrCode) -> u8 {
    code.version().value()
}

/// Whether the module at column `x`, row `y` is dark.
pub fn dark(code: &QrCode, x: usize, y: usize) -> bool {
    code.get_module(x as i32, y as i32)
}

/// The modules per side (without the quiet zone).
pub fn width(code: &QrCode) -> usize {
    code.size().max(0) as usize
}

/// A PNG of the code: `scale` pixels per module and the 4-module quiet zone, one bit per pixel
/// (two colours need no more; it makes the image eight times smaller to compress).
pub fn png(code: &QrCode, scale: u32) -> Result<Vec<u8>, CertError> {
    let modules = width(code);
    let scale = scale.max(1) as usize;
    let side = (modules + 8) * scale;
    let stride = side.div_ceil(8);
    // 1 is white; a dark module clears its bits.
    let mut row = vec![0u8; stride];
    let mut pixels = Vec::with_capacity(stride * side);
    for my in 0..modules + 8 {
        row.fill(0xff);
        if (4..modules + 4).contains(&my) {
            for mx in 0..modules {
                if dark(code, mx, my - 4) {
                    for x in (mx + 4) * scale..(mx + 5) * scale {
                        row[x / 8] &= !(0x80 >> (x % 8));
                    }
                }
            }
        }
        for _ in 0..scale {
            pixels.extend_from_slice(&row);
        }
    }
    let side = u32::try_from(side).map_err(|_| TOO_LONG)?;
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(|_| IMAGE)?;
        writer.write_image_data(&pixels).map_err(|_| IMAGE)?;
    }
    Ok(out)
}

/// An SVG of the code: one path of unit squares, with the 4-module quiet zone.
pub fn svg(code: &QrCode) -> String {
    let n = width(code);
    let mut path = String::new();
    for y in 0..n {
        for x in 0..n {
            if dark(code, x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + 4, y + 4));
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {s} {s}\" width=\"{px}\" height=\"{px}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{s}\" height=\"{s}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>\n",
        s = n + 8,
        px = (n + 8) * 4,
    )
}

/// The texts of every QR code found in a PNG image.
pub fn read_png(bytes: &[u8]) -> Result<Vec<String>, CertError> {
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|_| IMAGE)?;
    let info = reader.info();
    if info.width > MAX_SIDE || info.height > MAX_SIDE {
        return Err(IMAGE);
    }
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(|_| IMAGE)?;
    let (w, h) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    let grey = |x: usize, y: usize| -> u8 {
        let p = &buf[(y * w + x) * channels..];
        match channels {
            1 | 2 => p[0],
            _ => ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8,
        }
    };
    read_grey(w, h, grey)
}

/// What an SVG image may make the verifier do (it is public: anybody may upload one). A QR
/// code as SVG is a few shapes: a square per module or one path, at most 177 x 177 modules.
/// The largest SVG read (bytes), the side of the raster it is drawn at, the most XML nodes,
/// and the most paint: the areas of every shape's bounds added up, in whole rasters (a QR code
/// drawn module by module covers the raster about once).
const MAX_SVG: usize = 1 << 20;
const SVG_SIDE: f32 = 1200.0;
const MAX_SVG_NODES: u32 = 40_000;
const MAX_SVG_PAINT: f32 = 16.0;
/// The elements a QR code is drawn with; anything else (filters, masks, patterns, images,
/// text, `use`, scripts) is refused before it is drawn.
const SVG_ELEMENTS: [&str; 13] = [
    "svg", "g", "path", "rect", "polygon", "polyline", "line", "circle", "ellipse", "title",
    "desc", "defs", "metadata",
];

const SVG: CertError = CertError::new(
    "qr.svg",
    "SVG 画像を読めません",
    "cannot read the SVG image",
);
const SVG_LIMIT: CertError = CertError::new(
    "qr.svg_limit",
    "SVG 画像が複雑すぎます(QRコードの図形のみ、1 MiB・40,000 要素まで)",
    "the SVG image is too complex (QR code shapes only, up to 1 MiB and 40,000 elements)",
);

/// The texts of every QR code found in an SVG image (rendered with resvg, then read as a PNG
/// would be): the official SMART Health Card examples come as SVG. The work an image can ask
/// for is bounded before it is drawn (the `MAX_SVG` limits of this module).
pub fn read_svg(bytes: &[u8]) -> Result<Vec<String>, CertError> {
    use resvg::{tiny_skia, usvg};
    if bytes.len() > MAX_SVG {
        return Err(SVG_LIMIT);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SVG)?;
    let xml = usvg::roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_SVG_NODES,
        ..Default::default()
    };
    let doc = usvg::roxmltree::Document::parse_with_options(text, xml).map_err(|e| match e {
        usvg::roxmltree::Error::NodesLimitReached | usvg::roxmltree::Error::DtdDetected => {
            SVG_LIMIT
        }
        _ => SVG,
    })?;
    let only_shapes = doc.descendants().filter(|n| n.is_element()).all(|n| {
        n.tag_name().namespace() == Some("http://www.w3.org/2000/svg")
            && SVG_ELEMENTS.contains(&n.tag_name().name())
            && n.attributes()
                // No effects (filters, masks), no dashes (a dashed hairline is cheap to write and
                // costly to draw), and no `style`, which could carry either.
                .all(|a| !matches!(a.name(), "filter" | "mask" | "style" | "stroke-dasharray"))
    });
    if !only_shapes {
        return Err(SVG_LIMIT);
    }
    let tree = usvg::Tree::from_xmltree(&doc, &usvg::Options::default()).map_err(|_| SVG)?;
    let size = tree.size();
    let scale = SVG_SIDE / size.width().max(size.height());
    if paint(tree.root()) * scale * scale > MAX_SVG_PAINT * SVG_SIDE * SVG_SIDE {
        return Err(SVG_LIMIT);
    }
    let (w, h) = (
        (size.width() * scale).ceil() as u32,
        (size.height() * scale).ceil() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w.max(1), h.max(1)).ok_or(SVG)?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    let (w, h) = (pixmap.width() as usize, pixmap.height() as usize);
    let data = pixmap.data();
    read_grey(w, h, |x, y| {
        let p = &data[(y * w + x) * 4..];
        ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8
    })
}

/// The area (in the image's own units) of every drawn shape's bounds, stroke included, added up:
/// what drawing the image will cost, within a small factor.
fn paint(group: &resvg::usvg::Group) -> f32 {
    use resvg::usvg::Node;
    group
        .children()
        .iter()
        .map(|node| match node {
            // An isolated group (opacity, clipping) is drawn on a layer of its own first.
            Node::Group(g) if g.should_isolate() => {
                let r = g.abs_layer_bounding_box();
                paint(g) + r.width() * r.height()
            }
            Node::Group(g) => paint(g),
            Node::Path(p) => {
                let r = p.abs_stroke_bounding_box();
                r.width() * r.height()
            }
            // Refused above; counted as a whole raster each if ever met.
            Node::Image(_) | Node::Text(_) => f32::INFINITY,
        })
        .sum()
}

fn read_grey(
    w: usize,
    h: usize,
    grey: impl Fn(usize, usize) -> u8,
) -> Result<Vec<String>, CertError> {
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, grey);
    let texts: Vec<String> = image
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, text)| text))
        .collect();
    if texts.is_empty() {
        return Err(NONE_FOUND);
    }
    Ok(texts)
}
