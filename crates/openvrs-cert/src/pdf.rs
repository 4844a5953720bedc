//! The paper certificate (新型コロナウイルス感染症予防接種証明書): one A4 page, Japanese and
//! English, the fields a Japanese certificate shows, its QR codes drawn as vectors, and the
//! text set in IPAexGothic - a subset of the glyphs each document uses is embedded (pdf-writer,
//! subsetter, ttf-parser).

use std::sync::OnceLock;

use crate::qr::{self, QrCode};
use pdf_writer::{
    Content, Filter, Name, Pdf, Rect, Ref, Str,
    types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap},
};

use crate::CertError;

/// IPAexGothic (IPA Font License v1.0), see `fonts/README.md`.
static FONT_DATA: &[u8] = include_bytes!("../fonts/ipaexg.ttf");

const PDF: CertError = CertError::new(
    "pdf.render",
    "PDF を作成できません",
    "the PDF cannot be made",
);

/// What the page says. Values are printed as given.
#[derive(Default)]
pub struct Document {
    /// Labelled fields (氏名 / Name, ...): Japanese label, English label, value.
    pub fields: Vec<(String, String, String)>,
    /// One row per dose: 回数, 接種日, ワクチン, ロット番号, 接種国.
    pub doses: Vec<[String; 5]>,
    /// QR codes with a caption under each (e.g. `SMART Health Card`, `ICAO VDS-NC`).
    pub codes: Vec<(String, QrCode)>,
    pub certificate_id: String,
    /// `YYYY-MM-DD`.
    pub issued_on: String,
    /// Who issued it, e.g. `うるま市長`.
    pub issuer: String,
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Personal values stay out of any log.
        f.write_str("Document(..)")
    }
}

struct Font {
    face: ttf_parser::Face<'static>,
    units: f32,
}

fn font() -> Result<&'static Font, CertError> {
    static FONT: OnceLock<Option<Font>> = OnceLock::new();
    FONT.get_or_init(|| {
        let face = ttf_parser::Face::parse(FONT_DATA, 0).ok()?;
        let units = f32::from(face.units_per_em());
        Some(Font { face, units })
    })
    .as_ref()
    .ok_or(PDF)
}

/// Text laid out with the subset's glyph ids.
struct Writer<'a> {
    font: &'a Font,
    glyphs: subsetter::GlyphRemapper,
    /// (new glyph id, character) for the ToUnicode map.
    chars: Vec<(u16, char)>,
    content: Content,
}

const A4: (f32, f32) = (595.28, 841.89);
const MARGIN: f32 = 56.0;

impl Writer<'_> {
    /// The 2-byte CIDs of `text`, remembering each glyph; and its width at `size`.
    fn encode(&mut self, text: &str, size: f32) -> (Vec<u8>, f32) {
        let mut bytes = Vec::with_capacity(text.len() * 2);
        let mut width = 0.0;
        for c in text.chars() {
            let old = self.font.face.glyph_index(c).map_or(0, |g| g.0);
            let new = self.glyphs.remap(old);
            if !self.chars.iter().any(|(g, _)| *g == new) {
                self.chars.push((new, c));
            }
            width += f32::from(
                self.font
                    .face
                    .glyph_hor_advance(ttf_parser::GlyphId(old))
                    .unwrap_or(0),
            ) * size
                / self.font.units;
            bytes.extend_from_slice(&new.to_be_bytes());
        }
        (bytes, width)
    }

    fn text(&mut self, x: f32, y: f32, size: f32, text: &str) -> f32 {
        let (bytes, width) = self.encode(text, size);
        self.content.begin_text();
        self.content.set_font(Name(b"F1"), size);
        self.content.next_line(x, y);
        self.content.show(Str(&bytes));
        self.content.end_text();
        width
    }

    fn centered(&mut self, y: f32, size: f32, text: &str) {
        let (_, width) = self.encode(text, size);
        self.text((A4.0 - width) / 2.0, y, size, text);
    }

    fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32) {
        self.content.set_line_width(0.6);
        self.content.move_to(x1, y1);
        self.content.line_to(x2, y2);
        self.content.stroke();
    }

    /// A QR code as filled squares (runs of dark modules merged), bottom-left at (x, y).
    fn qr(&mut self, code: &QrCode, x: f32, y: f32, size: f32) {
        let n = qr::width(code);
        let module = size / n as f32;
        self.content.set_fill_gray(0.0);
        for row in 0..n {
            let mut col = 0;
            while col < n {
                if qr::dark(code, col, row) {
                    let start = col;
                    while col < n && qr::dark(code, col, row) {
                        col += 1;
                    }
                    self.content.rect(
                        x + start as f32 * module,
                        y + size - (row + 1) as f32 * module,
                        (col - start) as f32 * module,
                        module,
                    );
                } else {
                    col += 1;
                }
            }
        }
        self.content.fill_nonzero();
    }
}

/// Renders the certificate as a one-page A4 PDF.
pub fn certificate(doc: &Document) -> Result<Vec<u8>, CertError> {
    let font = font()?;
    let mut w = Writer {
        font,
        glyphs: subsetter::GlyphRemapper::new(),
        chars: Vec::new(),
        content: Content::new(),
    };
    let left = MARGIN;
    let right = A4.0 - MARGIN;
    let mut y = A4.1 - MARGIN - 16.0;
    w.centered(y, 16.0, "新型コロナウイルス感染症予防接種証明書");
    y -= 20.0;
    w.centered(y, 12.0, "Vaccination Certificate for COVID-19");
    y -= 30.0;
    for (ja, en, value) in &doc.fields {
        w.text(left, y, 10.5, ja);
        w.text(left, y - 12.0, 8.0, en);
        w.text(left + 170.0, y - 5.0, 12.0, value);
        w.line(left, y - 17.0, right, y - 17.0);
        y -= 32.0;
    }
    y -= 10.0;
    w.text(left, y, 11.0, "接種記録 / Vaccination record");
    y -= 20.0;
    let columns = [0.0, 60.0, 150.0, 330.0, 420.0];
    let headers = [
        ("回数", "Dose"),
        ("接種日", "Date"),
        ("ワクチン名", "Vaccine"),
        ("ロット番号", "Lot"),
        ("接種国", "Country"),
    ];
    for (x, (ja, en)) in columns.iter().zip(headers) {
        w.text(left + x, y, 9.0, ja);
        w.text(left + x, y - 10.0, 7.5, en);
    }
    w.line(left, y - 15.0, right, y - 15.0);
    y -= 30.0;
    for dose in &doc.doses {
        for (i, (x, value)) in columns.iter().zip(dose).enumerate() {
            // The product's names are the long ones.
            w.text(left + x, y, if i == 2 { 8.0 } else { 10.0 }, value);
        }
        y -= 18.0;
    }
    w.line(left, y + 8.0, right, y + 8.0);
    // The QR codes, side by side, above the footer.
    let size = 170.0;
    let gap = 30.0;
    let count = doc.codes.len() as f32;
    let total = count * size + (count - 1.0).max(0.0) * gap;
    let mut x = (A4.0 - total) / 2.0;
    let qr_y = MARGIN + 110.0;
    for (caption, code) in &doc.codes {
        w.qr(code, x, qr_y, size);
        let (_, width) = w.encode(caption, 9.0);
        w.text(x + (size - width) / 2.0, qr_y - 14.0, 9.0, caption);
        x += size + gap;
    }
    let mut y = MARGIN + 60.0;
    for line in [
        format!("証明書ID / Certificate ID: {}", doc.certificate_id),
        format!("証明書発行日 / Date of issue: {}", doc.issued_on),
        format!("発行者 / Issuer: {}", doc.issuer),
    ] {
        w.text(left, y, 9.5, &line);
        y -= 15.0;
    }
    finish(w)
}

fn finish(w: Writer<'_>) -> Result<Vec<u8>, CertError> {
    let subset = subsetter::subset(FONT_DATA, 0, &w.glyphs).map_err(|_| PDF)?;
    let font = w.font;
    let widths: Vec<f32> = w
        .glyphs
        .remapped_gids()
        .map(|old| {
            f32::from(
                font.face
                    .glyph_hor_advance(ttf_parser::GlyphId(old))
                    .unwrap_or(0),
            ) * 1000.0
                / font.units
        })
        .collect();
    let (catalog, pages, page, type0, cid, descriptor, file, cmap, contents) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
        Ref::new(6),
        Ref::new(7),
        Ref::new(8),
        Ref::new(9),
    );
    let base = Name(b"OPNVRS+IPAexGothic");
    let system = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    {
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, A4.0, A4.1));
        p.parent(pages);
        p.contents(contents);
        p.resources().fonts().pair(Name(b"F1"), type0);
    }
    pdf.type0_font(type0)
        .base_font(base)
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap);
    {
        let mut c = pdf.cid_font(cid);
        c.subtype(CidFontType::Type2);
        c.base_font(base);
        c.system_info(system);
        c.font_descriptor(descriptor);
        c.default_width(0.0);
        c.cid_to_gid_map_predefined(Name(b"Identity"));
        c.widths().consecutive(0, widths);
    }
    let bbox = font.face.global_bounding_box();
    let scale = |v: i16| f32::from(v) * 1000.0 / font.units;
    pdf.font_descriptor(descriptor)
        .name(base)
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            scale(bbox.x_min),
            scale(bbox.y_min),
            scale(bbox.x_max),
            scale(bbox.y_max),
        ))
        .italic_angle(0.0)
        .ascent(scale(font.face.ascender()))
        .descent(scale(font.face.descender()))
        .cap_height(scale(
            font.face.capital_height().unwrap_or(font.face.ascender()),
        ))
        .stem_v(80.0)
        .font_file2(file);
    let compressed = deflate(&subset)?;
    pdf.stream(file, &compressed)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), subset.len() as i32);
    let mut unicode = UnicodeCmap::new(Name(b"Custom"), system);
    for (glyph, c) in &w.chars {
        unicode.pair(*glyph, *c);
    }
    pdf.cmap(cmap, &unicode.finish());
    let content = deflate(&w.content.finish())?;
    pdf.stream(contents, &content).filter(Filter::FlateDecode);
    Ok(pdf.finish())
}

fn deflate(bytes: &[u8]) -> Result<Vec<u8>, CertError> {
    use std::io::Write as _;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(bytes).map_err(|_| PDF)?;
    z.finish().map_err(|_| PDF)
}
