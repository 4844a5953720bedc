//! The national open data (reference/opendata.md): doses given, counted by vaccination date,
//! prefecture, gender, age group and dose number, written as `prefecture.ndjson`,
//! `summary_by_date.csv` and `summary_by_prefecture.csv`, with small counts suppressed below an
//! optional threshold; and a chart of daily doses as SVG. Counts only: no person can be in
//! them.

use std::{collections::BTreeMap, fmt::Write as _};

use askama::Template;
use openvrs_domain::{aggregate::AgeGroup, ids::MunicipalityCode, prefecture::Prefecture};
use openvrs_store::{Store, StoreError};
use time::Date;

/// One count of one municipality (the files sum them by prefecture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub date: Date,
    pub municipality: MunicipalityCode,
    /// The municipality's.
    pub prefecture: Prefecture,
    /// `M`, `F` or `U`.
    pub gender: char,
    pub age: AgeGroup,
    pub dose: u32,
    pub count: u64,
}

/// Every municipality's counts (a shredded municipality has none left to count), in date
/// order.
pub fn collect(store: &dyn Store) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::new();
    for m in store.municipalities()? {
        let counts = match store.dose_counts(m.code) {
            Ok(c) => c,
            Err(StoreError::Shredded(_)) => continue,
            Err(e) => return Err(e),
        };
        rows.extend(counts.into_iter().map(|c| Row {
            date: c.date,
            municipality: m.code,
            prefecture: m.code.prefecture(),
            gender: c.sex.open_data(),
            age: c.age,
            dose: c.dose_number,
            count: c.count,
        }));
    }
    rows.sort_by_key(|r| (r.date, r.municipality.value(), r.gender, r.age, r.dose));
    Ok(rows)
}

/// What is published: the rows up to a date (a day's files; all for `latest`), and the
/// threshold below which a count is not shown (0: every count).
#[derive(Debug, Clone, Copy)]
pub struct Publish {
    pub until: Option<Date>,
    pub suppress_below: u64,
}

impl Publish {
    fn rows<'a>(&self, rows: &'a [Row]) -> impl Iterator<Item = &'a Row> {
        let until = self.until;
        rows.iter()
            .filter(move |r| until.is_none_or(|u| r.date <= u))
    }

    /// A count as a cell: empty when suppressed.
    fn cell(&self, n: u64) -> String {
        if n > 0 && n < self.suppress_below {
            String::new()
        } else {
            n.to_string()
        }
    }
}

/// `prefecture.ndjson`: one object per line, the municipalities summed by prefecture; a count
/// below the threshold is left out.
pub fn prefecture_ndjson(rows: &[Row], p: Publish) -> String {
    let mut sums: BTreeMap<(Date, u8, char, AgeGroup, u32), u64> = BTreeMap::new();
    for r in p.rows(rows) {
        *sums
            .entry((r.date, r.prefecture.number(), r.gender, r.age, r.dose))
            .or_default() += r.count;
    }
    let mut out = String::new();
    for ((date, prefecture, gender, age, dose), count) in sums {
        if count < p.suppress_below {
            continue;
        }
        // The reference's field order; every value is a code or a number (nothing to escape).
        // `medical_worker`: not held, so whoever was a medical worker is counted with everyone.
        let _ = writeln!(
            out,
            "{{\"date\":\"{date}\",\"prefecture\":\"{prefecture:02}\",\"gender\":\"{gender}\",\"age\":\"{}\",\"medical_worker\":false,\"status\":{dose},\"count\":{count}}}",
            age.code(),
        );
    }
    out
}

fn ordinal(n: u32) -> String {
    match n {
        1 => "first".into(),
        2 => "second".into(),
        3 => "third".into(),
        4 => "fourth".into(),
        5 => "fifth".into(),
        n => format!("{n}th"),
    }
}

fn max_dose(rows: &[Row]) -> u32 {
    rows.iter().map(|r| r.dose).max().unwrap_or(2).max(2)
}

/// `summary_by_date.csv`: doses per day, a column per dose number (`general`: everyone, as no
/// medical-worker flag is held); a suppressed count is an empty cell.
pub fn summary_by_date_csv(rows: &[Row], p: Publish) -> String {
    let doses = max_dose(rows);
    let mut by_date: BTreeMap<Date, BTreeMap<u32, u64>> = BTreeMap::new();
    for r in p.rows(rows) {
        *by_date
            .entry(r.date)
            .or_default()
            .entry(r.dose)
            .or_default() += r.count;
    }
    let mut out = String::from("date");
    for d in 1..=doses {
        let _ = write!(out, ",count_{}_shot_general", ordinal(d));
    }
    out.push('\n');
    for (date, counts) in by_date {
        out.push_str(&date.to_string());
        for d in 1..=doses {
            let _ = write!(out, ",{}", p.cell(counts.get(&d).copied().unwrap_or(0)));
        }
        out.push('\n');
    }
    out
}

/// `summary_by_prefecture.csv`: totals per prefecture, a column per dose number.
pub fn summary_by_prefecture_csv(rows: &[Row], p: Publish) -> String {
    let doses = max_dose(rows);
    let mut by_prefecture: BTreeMap<u8, BTreeMap<u32, u64>> = BTreeMap::new();
    for r in p.rows(rows) {
        *by_prefecture
            .entry(r.prefecture.number())
            .or_default()
            .entry(r.dose)
            .or_default() += r.count;
    }
    let mut out = String::from("prefecture_code,prefecture_name");
    for d in 1..=doses {
        let _ = write!(out, ",count_{}_shot", ordinal(d));
    }
    out.push('\n');
    for pref in Prefecture::all() {
        let counts = by_prefecture.remove(&pref.number()).unwrap_or_default();
        let _ = write!(out, "{:02},{}", pref.number(), pref.name_ja());
        for d in 1..=doses {
            let _ = write!(out, ",{}", p.cell(counts.get(&d).copied().unwrap_or(0)));
        }
        out.push('\n');
    }
    out
}

/// Where counts are looked at: the country, a prefecture or a municipality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Country,
    Prefecture(Prefecture),
    Municipality(MunicipalityCode),
}

impl Area {
    pub fn holds(self, r: &Row) -> bool {
        match self {
            Area::Country => true,
            Area::Prefecture(p) => r.prefecture == p,
            Area::Municipality(m) => r.municipality == m,
        }
    }
}

/// Totals per dose number of the rows `area` holds, grouped by `key` (a municipality, a gender
/// and age group, ...), in key order.
pub fn totals<K: Ord>(
    rows: &[Row],
    area: Area,
    key: impl Fn(&Row) -> K,
) -> BTreeMap<K, BTreeMap<u32, u64>> {
    let mut out: BTreeMap<K, BTreeMap<u32, u64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| area.holds(r)) {
        *out.entry(key(r)).or_default().entry(r.dose).or_default() += r.count;
    }
    out
}

/// Doses per day and dose number, for a chart and its table: (date, counts by dose number),
/// every day from the first to the last (a day without doses has none).
pub fn daily(rows: &[Row], area: Area) -> Vec<(Date, BTreeMap<u32, u64>)> {
    let mut by_date: BTreeMap<Date, BTreeMap<u32, u64>> = BTreeMap::new();
    for r in rows.iter().filter(|r| area.holds(r)) {
        *by_date
            .entry(r.date)
            .or_default()
            .entry(r.dose)
            .or_default() += r.count;
    }
    let (Some(first), Some(last)) = (
        by_date.keys().next().copied(),
        by_date.keys().next_back().copied(),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut day = first;
    while day <= last {
        out.push((day, by_date.remove(&day).unwrap_or_default()));
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

const COLOURS: [&str; 6] = [
    "#0b57a4", "#c25400", "#2e7d32", "#8e24aa", "#6d4c41", "#00838f",
];

/// A count as people read it: digits grouped by thousands (`1,234,567`).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A round step for an axis up to `max` (1, 2 or 5 times a power of ten, about five ticks),
/// and the axis's top: the first multiple of the step at or above `max`.
fn axis(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let rough = (max as f64 / 5.0).max(1.0);
    let power = 10f64.powi(rough.log10().floor() as i32);
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * power) as u64;
    let step = step.max(1);
    (step, max.div_ceil(step) * step)
}

/// A grid line of the chart's counts axis, and its label.
struct CountTick {
    y: f64,
    label: String,
    stroke: &'static str,
}

/// A tick of the chart's dates axis, at the first day of a month.
struct MonthTick {
    x: f64,
    /// `2021-06`.
    label: String,
}

/// One dose number's line, and its entry in the legend (which starts at `at`).
struct DoseLine {
    dose: u32,
    colour: &'static str,
    points: String,
    at: f64,
}

/// The chart's geometry; `templates/chart.svg` draws it (and escapes the labels).
#[derive(Template)]
#[template(path = "chart.svg")]
struct Chart<'a> {
    title: &'a str,
    dose_label: &'a str,
    per_day: &'a str,
    w: f64,
    h: f64,
    left: f64,
    /// The plot's right edge.
    right: f64,
    top: f64,
    /// The plot's bottom edge: the dates axis.
    bottom: f64,
    counts: Vec<CountTick>,
    months: Vec<MonthTick>,
    /// The first and last days, labelled when no month begins in between.
    ends: Option<(Date, Date)>,
    lines: Vec<DoseLine>,
}

/// A line chart of doses per day, one line per dose number, as SVG with a title and a
/// description for screen readers (`labels`: title, "dose", "per day"): the legend above the
/// plot, the counts axis at round numbers, the dates axis at the start of each month (every
/// few months over a long span). The page gives the same numbers as a table beside it.
pub fn chart_svg(days: &[(Date, BTreeMap<u32, u64>)], labels: [&str; 3]) -> String {
    let (w, h) = (900.0_f64, 340.0_f64);
    let (left, right, top, bottom) = (70.0_f64, 16.0_f64, 40.0_f64, 30.0_f64);
    let [title, dose_label, per_day] = labels;
    let highest = days
        .iter()
        .flat_map(|(_, c)| c.values().copied())
        .max()
        .unwrap_or(0);
    let (step, max) = axis(highest);
    let doses: Vec<u32> = {
        let mut d: Vec<u32> = days.iter().flat_map(|(_, c)| c.keys().copied()).collect();
        d.sort_unstable();
        d.dedup();
        d
    };
    let (plot_w, plot_h) = (w - left - right, h - top - bottom);
    let x = |i: usize| left + plot_w * (i as f64) / ((days.len().max(2) - 1) as f64);
    let y = |v: u64| top + plot_h * (1.0 - v as f64 / max as f64);
    // The counts axis: a grid line and a label at every step.
    let counts = (0..=max / step)
        .map(|k| k * step)
        .map(|tick| CountTick {
            y: y(tick),
            label: thousands(tick),
            stroke: if tick == 0 { "#555" } else { "#e2e2e2" },
        })
        .collect();
    // The dates axis: a tick at the first day of each month (every 3, 6 or 12 months over
    // longer spans); the first and last days when no month begins in between.
    let every = match days.iter().filter(|(d, _)| d.day() == 1).count() {
        0..=12 => 1,
        13..=36 => 3,
        37..=72 => 6,
        _ => 12,
    };
    let months: Vec<MonthTick> = days
        .iter()
        .enumerate()
        .filter(|(_, (d, _))| d.day() == 1 && (u8::from(d.month()) - 1) % every == 0)
        .map(|(i, (d, _))| MonthTick {
            x: x(i),
            label: format!("{}-{:02}", d.year(), u8::from(d.month())),
        })
        .collect();
    let ends = match (months.is_empty(), days.first(), days.last()) {
        (true, Some((first, _)), Some((last, _))) => Some((*first, *last)),
        _ => None,
    };
    let lines = doses
        .iter()
        .enumerate()
        .map(|(k, dose)| DoseLine {
            dose: *dose,
            colour: COLOURS[k % COLOURS.len()],
            points: days
                .iter()
                .enumerate()
                .map(|(i, (_, c))| {
                    format!("{:.1},{:.1}", x(i), y(c.get(dose).copied().unwrap_or(0)))
                })
                .collect::<Vec<_>>()
                .join(" "),
            // The legend, above the plot where no line can cross it.
            at: left + 110.0 * k as f64,
        })
        .collect();
    Chart {
        title,
        dose_label,
        per_day,
        w,
        h,
        left,
        right: w - right,
        top,
        bottom: top + plot_h,
        counts,
        months,
        ends,
        lines,
    }
    .render()
    .expect("a chart of numbers and strings renders into a String")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn rows() -> Vec<Row> {
        let p = |n| Prefecture::from_number(n).unwrap();
        let m = |c| MunicipalityCode::parse(c).unwrap();
        vec![
            Row {
                date: date!(2021 - 05 - 31),
                municipality: m("131016"),
                prefecture: p(13),
                gender: 'F',
                age: AgeGroup::Under65,
                dose: 1,
                count: 120,
            },
            Row {
                date: date!(2021 - 05 - 31),
                municipality: m("472131"),
                prefecture: p(47),
                gender: 'M',
                age: AgeGroup::From65,
                dose: 1,
                count: 3,
            },
            Row {
                date: date!(2021 - 06 - 21),
                municipality: m("472018"),
                prefecture: p(47),
                gender: 'F',
                age: AgeGroup::From65,
                dose: 2,
                count: 40,
            },
        ]
    }

    #[test]
    fn files_in_the_published_layouts() {
        let all = Publish {
            until: None,
            suppress_below: 0,
        };
        assert_eq!(
            prefecture_ndjson(&rows(), all).lines().next().unwrap(),
            r#"{"date":"2021-05-31","prefecture":"13","gender":"F","age":"-64","medical_worker":false,"status":1,"count":120}"#
        );
        assert_eq!(
            summary_by_date_csv(&rows(), all),
            "date,count_first_shot_general,count_second_shot_general\n2021-05-31,123,0\n2021-06-21,0,40\n"
        );
        let by_pref = summary_by_prefecture_csv(&rows(), all);
        assert!(by_pref.starts_with(
            "prefecture_code,prefecture_name,count_first_shot,count_second_shot\n01,北海道,0,0\n"
        ));
        assert!(by_pref.contains("\n13,東京都,120,0\n") && by_pref.contains("\n47,沖縄県,3,40\n"));
        assert_eq!(by_pref.lines().count(), 48);
    }

    #[test]
    fn a_day_stops_at_that_day_and_small_counts_are_suppressed() {
        let day = Publish {
            until: Some(date!(2021 - 05 - 31)),
            suppress_below: 10,
        };
        let ndjson = prefecture_ndjson(&rows(), day);
        assert_eq!(
            ndjson.lines().count(),
            1,
            "the 3 is left out, June is not yet: {ndjson}"
        );
        assert!(summary_by_prefecture_csv(&rows(), day).contains("\n47,沖縄県,,0\n"));
        assert_eq!(
            summary_by_date_csv(&rows(), day),
            "date,count_first_shot_general,count_second_shot_general\n2021-05-31,123,0\n"
        );
    }

    #[test]
    fn the_chart_draws_a_line_per_dose_and_names_itself() {
        let svg = chart_svg(
            &daily(&rows(), Area::Country),
            ["接種回数 <推移>", "接種", "日ごと"],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        // The legend sits above the plot (which starts at y = 40); nothing is styled inline
        // (the pages' policy allows no style attribute).
        assert!(svg.contains("<text x=\"92\" y=\"20\""), "{svg}");
        assert!(!svg.contains("style="), "{svg}");
        // Round numbers on the counts axis, months on the dates axis (June 2021 begins).
        assert!(svg.contains(">2021-06</text>"), "{svg}");
        assert!(svg.contains("<title id=\"chart-title\">接種回数 &#60;推移&#62;</title>"));
        let okinawa = daily(
            &rows(),
            Area::Prefecture(Prefecture::from_number(47).unwrap()),
        );
        assert_eq!(okinawa.len(), 22, "every day from 31 May to 21 June");
        assert_eq!(okinawa[0].1.get(&1), Some(&3));
        assert!(okinawa[1].1.is_empty());
    }

    #[test]
    fn axes_count_in_round_steps_with_thousands_separators() {
        for (max, step, top) in [
            (0, 1, 1),
            (1, 1, 1),
            (7, 2, 8),
            (123, 50, 150),
            (1_000, 200, 1_000),
            (987_654, 200_000, 1_000_000),
        ] {
            assert_eq!(axis(max), (step, top), "{max}");
        }
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(123_456_789), "123,456,789");
    }

    #[test]
    fn towns_are_summed_by_prefecture_in_the_files_and_kept_apart_for_the_pages() {
        let mut rs = rows();
        let mut naha = rs[1].clone();
        naha.municipality = MunicipalityCode::parse("472018").unwrap();
        naha.count = 4;
        rs.push(naha);
        let all = Publish {
            until: None,
            suppress_below: 0,
        };
        let ndjson = prefecture_ndjson(&rs, all);
        assert!(ndjson.contains(r#""prefecture":"47","gender":"M","age":"65-","medical_worker":false,"status":1,"count":7}"#), "{ndjson}");
        let okinawa = Area::Prefecture(Prefecture::from_number(47).unwrap());
        let by_town = totals(&rs, okinawa, |r| r.municipality.value());
        assert_eq!(by_town[&472131][&1], 3);
        assert_eq!(by_town[&472018][&1], 4);
        assert_eq!(by_town[&472018][&2], 40);
        let by_group = totals(&rs, Area::Country, |r| (r.gender, r.age));
        assert_eq!(by_group[&('F', AgeGroup::Under65)][&1], 120);
        assert_eq!(by_group.len(), 3);
    }

    #[test]
    fn the_charts_labels_are_text() {
        let svg = chart_svg(
            &daily(&rows(), Area::Country),
            [
                r#"<script>alert("x")</script> & 'y'"#,
                "<b>接種</b>",
                "日ごと & \"月ごと\"",
            ],
        );
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(
            svg.contains("<title id=\"chart-title\">&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;y&#39;</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("<desc id=\"chart-desc\">日ごと &#38; &#34;月ごと&#34;</desc>"),
            "{svg}"
        );
        assert_eq!(
            svg.matches(">&#60;b&#62;接種&#60;/b&#62; 2</text>").count(),
            1,
            "{svg}"
        );
        // Nothing but the labels is escaped: the markup and the numbers are as drawn.
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 900 340\"")
        );
        assert!(
            svg.contains("<rect width=\"900\" height=\"340\" fill=\"#fff\"/>"),
            "{svg}"
        );
        assert!(
            svg.contains(
                "<text x=\"64\" y=\"44.0\" font-size=\"11\" text-anchor=\"end\">150</text>"
            ),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>"), "{svg}");
    }

    #[test]
    fn a_short_span_is_labelled_by_its_first_and_last_days() {
        let svg = chart_svg(&daily(&rows()[..2], Area::Country), ["t", "d", "p"]);
        assert!(
            svg.contains("<text x=\"70\" y=\"332\" font-size=\"11\">2021-05-31</text><text x=\"884\" y=\"332\" font-size=\"11\" text-anchor=\"end\">2021-05-31</text>"),
            "{svg}"
        );
        let svg = chart_svg(&[], ["t", "d", "p"]);
        assert!(
            !svg.contains("<polyline") && svg.ends_with("</svg>"),
            "{svg}"
        );
    }
}
