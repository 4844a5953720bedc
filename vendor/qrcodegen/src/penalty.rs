//! The mask penalty score of ISO/IEC 18004 section 7.8.3 (rules N1 to N4), exactly as
//! `QrCode::get_penalty_score` computes it, but on bit sets: every row and every column is a
//! line of at most 177 bits held in three words, so runs, 2x2 blocks and dark modules are
//! counted many modules at a time instead of one branch per module. openvrs' patch; the
//! reference scorer stays in `lib.rs` and the tests check the two agree.

use std::sync::OnceLock;

use crate::{Mask, QrCode, QrCodeEcc, Version};

/// One row or column: bit `i` is module `i`, 1 is dark; bits at and beyond the size are 0.
type Line = [u64; 3];

const N1: i32 = 3;
const N2: i32 = 3;
const N3: i32 = 40;
const N4: i32 = 10;

/// A symbol before masking, as rows and columns of bit sets, with the data modules (those a
/// mask inverts) marked.
pub(crate) struct Symbol {
	size: usize,
	rows: Vec<Line>,
	cols: Vec<Line>,
	data_rows: Vec<Line>,
	data_cols: Vec<Line>,
}

impl Symbol {
	pub(crate) fn new(modules: &[bool], isfunction: &[bool], size: usize) -> Self {
		let (rows, cols) = lines(modules, size, false);
		let (data_rows, data_cols) = lines(isfunction, size, true);
		Symbol { size, rows, cols, data_rows, data_cols }
	}

	/// The penalty score with `mask` applied, once its format bits are drawn in `modules`.
	/// The format bits lie in row 8 and column 8 only, so only those are read again.
	pub(crate) fn score(&mut self, mask: u8, modules: &[bool]) -> i32 {
		let size = self.size;
		let (row8, col8) = (line(modules, 8 * size, 1, size), line(modules, 8, size, size));
		self.rows[8] = row8;
		self.cols[8] = col8;
		for i in 0 .. size {
			set(&mut self.rows[i], 8, bit(&col8, size, i as isize));
			set(&mut self.cols[i], 8, bit(&row8, size, i as isize));
		}
		let pattern = patterns(size, mask);
		let masked = |lines: &[Line], data: &[Line], pattern: &[Line]| -> Vec<Line> {
			lines.iter().zip(data).zip(pattern).map(|((l, d), p)| xor(l, &and(d, p))).collect()
		};
		let rows = masked(&self.rows, &self.data_rows, &pattern.0);
		let cols = masked(&self.cols, &self.data_cols, &pattern.1);
		score_lines(&rows, &cols, size)
	}
}

/// The penalty score of a symbol given as its rows and its columns.
fn score_lines(rows: &[Line], cols: &[Line], size: usize) -> i32 {
	let full = ones(size);
	let mut result = 0;
	for line in rows.iter().chain(cols.iter()) {
		result += runs(line, &full) + finder_like(line, size);
	}
	// 2x2 blocks: columns x and x+1 of two neighbouring rows, all four of one colour.
	for pair in rows.windows(2) {
		let same_vertically = and(&not(&xor(&pair[0], &pair[1])), &full);
		let same_across = not(&xor(&pair[0], &shr1(&pair[0])));
		let blocks = and(&and(&same_vertically, &shr1(&same_vertically)), &same_across);
		result += N2 * count(&blocks);
	}
	// Balance: the smallest k >= 0 with (45-5k)% <= dark/total <= (55+5k)%.
	let dark: i32 = rows.iter().map(count).sum();
	let total = (size * size) as i32;
	let k = ((dark * 20 - total * 10).abs() + total - 1) / total - 1;
	result + k * N4
}

/// The rows and the columns of a square of `size` cells given row by row; `invert` reads
/// each cell negated.
fn lines(cells: &[bool], size: usize, invert: bool) -> Lines {
	let rows: Vec<Line> = (0 .. size).map(|y| line(cells, y * size, 1, size)).collect();
	let rows: Vec<Line> = if invert { rows.iter().map(|r| and(&not(r), &ones(size))).collect() } else { rows };
	let cols = transpose(&rows, size);
	(rows, cols)
}

/// `size` cells from `first`, `step` apart, as a line.
fn line(cells: &[bool], first: usize, step: usize, size: usize) -> Line {
	let mut line = [0u64; 3];
	for (i, word) in line.iter_mut().enumerate() {
		let from = i * 64;
		for j in (from .. size.min(from + 64)).rev() {
			*word = *word << 1 | u64::from(cells[first + j * step]);
		}
	}
	line
}

/// The columns of a square given by its rows.
fn transpose(rows: &[Line], size: usize) -> Vec<Line> {
	(0 .. size)
		.map(|x| {
			let (w, b) = (x >> 6, x & 63);
			let mut col = [0u64; 3];
			for (i, word) in col.iter_mut().enumerate() {
				let from = i * 64;
				for y in (from .. size.min(from + 64)).rev() {
					*word = *word << 1 | (rows[y][w] >> b & 1);
				}
			}
			col
		})
		.collect()
}

/// A symbol's rows and columns.
type Lines = (Vec<Line>, Vec<Line>);

/// The eight mask patterns for one symbol size, as rows and as columns, drawn once per size
/// by `QrCode::apply_mask` on a blank symbol.
fn patterns(size: usize, mask: u8) -> &'static Lines {
	static CACHE: OnceLock<Vec<OnceLock<Vec<Lines>>>> = OnceLock::new();
	let cache = CACHE.get_or_init(|| (0 .. 41).map(|_| OnceLock::new()).collect());
	let all = cache[(size - 17) / 4].get_or_init(|| {
		(0 .. 8)
			.map(|mask| {
				let mut blank = QrCode {
					version: Version::new(((size - 17) / 4) as u8),
					size: size as i32,
					mask: Mask::new(0),
					errorcorrectionlevel: QrCodeEcc::Low,
					modules: vec![false; size * size],
					isfunction: vec![false; size * size],
				};
				blank.apply_mask(Mask::new(mask));
				lines(&blank.modules, size, false)
			})
			.collect()
	});
	&all[usize::from(mask)]
}

fn set(line: &mut Line, i: usize, dark: bool) {
	let (w, b) = (i >> 6, i & 63);
	line[w] = line[w] & !(1 << b) | u64::from(dark) << b;
}

/// Rule N1: a run of five or more modules of one colour scores 3, and 1 for each module
/// beyond five. A module is the fifth (or later) of its run when it and the four before it
/// share a colour; each such module scores 1 and each run scores N1 - 1 more.
fn runs(line: &Line, full: &Line) -> i32 {
	// Bit x: module x has the colour of module x-1 (never for x = 0).
	let same = and(&not(&xor(line, &shl1(line))), full);
	let same = [same[0] & !1, same[1], same[2]];
	let fifth = and(&and(&same, &shl1(&same)), &and(&shl(&same, 2), &shl(&same, 3)));
	let first_fifths = and(&fifth, &not(&shl1(&fifth)));
	count(&fifth) + (N1 - 1) * count(&first_fifths)
}

/// Rule N3: a dark-light-dark-light-dark core of runs n, n, 3n, n, n with light runs around
/// it, scoring once when the light run on one side is at least 4n long and the other at
/// least n, and twice when both are at least 4n. Beyond the symbol everything is light.
/// Cores of scale 1 are found many at a time; larger ones need a dark run of six or more,
/// which are few and are looked at one by one.
fn finder_like(line: &Line, size: usize) -> i32 {
	// Bit s of at(k) is module s+k; !at(k) is light, also beyond the symbol.
	let at = |k: i32| if k >= 0 { shr(line, k as u32) } else { shl(line, (-k) as u32) };
	let all_of = |ks: &[i32], dark: bool| {
		ks.iter().fold(ones(192), |acc, &k| and(&acc, &if dark { at(k) } else { not(&at(k)) }))
	};
	// Scale 1, s the start of the dark run of three: light s-1 and s+3, dark s-2 and s+4,
	// light s-3 and s+5 (the outer dark runs are one module long).
	let core = and(&all_of(&[-2, 0, 1, 2, 4], true), &all_of(&[-3, -1, 3, 5], false));
	let before = and(&core, &all_of(&[-6, -5, -4], false));
	let after = and(&core, &all_of(&[6, 7, 8], false));
	let mut found = count(&before) + count(&after);

	let starts = and(line, &not(&shl(line, 1)));
	let long = and(&starts, &all_of(&[1, 2, 3, 4, 5], true));
	for start in BitIter::new(&long) {
		let end = (start .. size).find(|&i| !bit(line, size, i as isize)).unwrap_or(size);
		let len = end - start;
		if len % 3 != 0 {
			continue;
		}
		let (s, e, n) = (start as isize, end as isize, (len / 3) as isize);
		let core = all(line, size, s - n, s, false)
			&& all(line, size, s - 2 * n, s - n, true)
			&& all(line, size, e, e + n, false)
			&& all(line, size, e + n, e + 2 * n, true);
		if !core {
			continue;
		}
		// The outer dark runs are exactly n long because both terms need light beyond them.
		let (before, after) = (s - 2 * n, e + 2 * n);
		let light_before = |k: isize| all(line, size, before - k * n, before, false);
		let light_after = |k: isize| all(line, size, after, after + k * n, false);
		found += i32::from(light_before(4) && light_after(1));
		found += i32::from(light_after(4) && light_before(1));
	}
	found * N3
}

/// Module `i` of the line; outside the symbol is light.
fn bit(line: &Line, size: usize, i: isize) -> bool {
	(0..size as isize).contains(&i) && line[i as usize >> 6] >> (i & 63) & 1 == 1
}

/// Whether modules `from..to` are all dark (`dark`) or all light.
fn all(line: &Line, size: usize, from: isize, to: isize, dark: bool) -> bool {
	(from..to).all(|i| bit(line, size, i) == dark)
}

/// The set bits of a line, lowest first.
struct BitIter {
	words: Line,
	word: usize,
}

impl BitIter {
	fn new(line: &Line) -> Self {
		Self { words: *line, word: 0 }
	}
}

impl Iterator for BitIter {
	type Item = usize;
	fn next(&mut self) -> Option<usize> {
		while self.word < 3 {
			let w = self.words[self.word];
			if w != 0 {
				self.words[self.word] = w & (w - 1);
				return Some(self.word * 64 + w.trailing_zeros() as usize);
			}
			self.word += 1;
		}
		None
	}
}

fn ones(n: usize) -> Line {
	let mut line = [0u64; 3];
	for (i, word) in line.iter_mut().enumerate() {
		let bits = n.saturating_sub(i * 64).min(64);
		*word = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
	}
	line
}

fn count(line: &Line) -> i32 {
	line.iter().map(|w| w.count_ones() as i32).sum()
}

fn and(a: &Line, b: &Line) -> Line {
	[a[0] & b[0], a[1] & b[1], a[2] & b[2]]
}

fn xor(a: &Line, b: &Line) -> Line {
	[a[0] ^ b[0], a[1] ^ b[1], a[2] ^ b[2]]
}

fn not(a: &Line) -> Line {
	[!a[0], !a[1], !a[2]]
}

/// Bit x of the result is bit x-k of the line (toward higher positions), 0 <= k < 64.
fn shl(a: &Line, k: u32) -> Line {
	if k == 0 {
		return *a;
	}
	[a[0] << k, a[1] << k | a[0] >> (64 - k), a[2] << k | a[1] >> (64 - k)]
}

/// Bit x of the result is bit x+k of the line, 0 <= k < 64.
fn shr(a: &Line, k: u32) -> Line {
	if k == 0 {
		return *a;
	}
	[a[0] >> k | a[1] << (64 - k), a[1] >> k | a[2] << (64 - k), a[2] >> k]
}

fn shl1(a: &Line) -> Line {
	shl(a, 1)
}

fn shr1(a: &Line) -> Line {
	shr(a, 1)
}

#[cfg(test)]
mod tests {
	use super::{lines, score_lines, Symbol};
	use crate::{Mask, QrCode, QrCodeEcc, Version};

	fn score(modules: &[bool], size: usize) -> i32 {
		let (rows, cols) = lines(modules, size, false);
		score_lines(&rows, &cols, size)
	}

	/// A small deterministic generator (xorshift64*), so failures reproduce.
	struct Rng(u64);

	impl Rng {
		fn next(&mut self) -> u64 {
			self.0 ^= self.0 >> 12;
			self.0 ^= self.0 << 25;
			self.0 ^= self.0 >> 27;
			self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
		}
		fn below(&mut self, n: usize) -> usize {
			(self.next() % n as u64) as usize
		}
	}

	fn symbol(size: usize, modules: Vec<bool>) -> QrCode {
		QrCode {
			version: Version::new(((size - 17) / 4) as u8),
			size: size as i32,
			mask: Mask::new(0),
			errorcorrectionlevel: QrCodeEcc::Low,
			modules,
			isfunction: Vec::new(),
		}
	}

	/// Stamps a finder-like core of scale `n` (dark-light-dark-light-dark, n n 3n n n) with
	/// `before` and `after` light modules around it, along a row or a column.
	fn stamp(modules: &mut [bool], size: usize, rng: &mut Rng) {
		let n = 1 + rng.below(3);
		let (before, after) = (rng.below(5 * n), rng.below(5 * n));
		let mut line = vec![false; before];
		for (run, dark) in [(n, true), (n, false), (3 * n, true), (n, false), (n, true)] {
			line.extend(std::iter::repeat_n(dark, run));
		}
		line.extend(std::iter::repeat_n(false, after));
		if line.len() > size {
			return;
		}
		let start = rng.below(size - line.len() + 1);
		let other = rng.below(size);
		let vertical = rng.below(2) == 0;
		for (i, &dark) in line.iter().enumerate() {
			let (x, y) = if vertical { (other, start + i) } else { (start + i, other) };
			modules[y * size + x] = dark;
		}
	}

	#[test]
	fn agrees_with_the_reference_on_any_pattern() {
		let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
		for version in 1..=40usize {
			let size = version * 4 + 17;
			for case in 0..24 {
				// Densities from all light to all dark, then finder-like cores stamped in.
				let density = case % 9;
				let mut modules: Vec<bool> = (0..size * size).map(|_| rng.below(8) < density).collect();
				for _ in 0..case * 3 {
					stamp(&mut modules, size, &mut rng);
				}
				let code = symbol(size, modules);
				assert_eq!(
					score(&code.modules, size),
					code.get_penalty_score(),
					"version {version}, case {case}"
				);
			}
		}
	}

	#[test]
	fn scores_every_mask_of_real_symbols_as_the_reference_does() {
		let mut rng = Rng(42);
		for version in 1 ..= 40u8 {
			for ecl in [QrCodeEcc::Low, QrCodeEcc::Medium, QrCodeEcc::Quartile, QrCodeEcc::High] {
				// Unmasked, as QrCode::encode_codewords has it before choosing a mask.
				let ver = Version::new(version);
				let data: Vec<u8> = (0 .. QrCode::get_num_data_codewords(ver, ecl)).map(|_| rng.next() as u8).collect();
				let size = usize::from(version) * 4 + 17;
				let mut unmasked = QrCode {
					version: ver,
					size: size as i32,
					mask: Mask::new(0),
					errorcorrectionlevel: ecl,
					modules: vec![false; size * size],
					isfunction: vec![false; size * size],
				};
				unmasked.draw_function_patterns();
				let codewords = unmasked.add_ecc_and_interleave(&data);
				unmasked.draw_codewords(&codewords);
				let mut symbol = Symbol::new(&unmasked.modules, &unmasked.isfunction, size);
				let mut best = (i32::MAX, 0);
				for m in 0 .. 8 {
					let mut masked = unmasked.clone();
					masked.apply_mask(Mask::new(m));
					masked.draw_format_bits(Mask::new(m));
					let reference = masked.get_penalty_score();
					unmasked.draw_format_bits(Mask::new(m));
					assert_eq!(symbol.score(m, &unmasked.modules), reference, "version {version} mask {m}");
					assert_eq!(score(&masked.modules, size), reference, "version {version} mask {m}");
					best = best.min((reference, m));
				}
				let chosen = QrCode::encode_codewords(ver, ecl, &data, None);
				assert_eq!(chosen.mask().value(), best.1, "version {version}");
			}
		}
	}
}
