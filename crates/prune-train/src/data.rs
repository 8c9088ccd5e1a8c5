//! Labelled tabular data for the built-in training loops and the examples.

use prune_core::rng::Lcg;
use prune_core::{PruneError, Result};
use std::io::Read;

/// Rows of f32 features with class labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Row-major features, `len() * n_features` values.
    pub features: Vec<f32>,
    /// One label per row.
    pub labels: Vec<usize>,
    /// Features per row.
    pub n_features: usize,
    /// Number of classes (largest label + 1).
    pub n_classes: usize,
}

impl Dataset {
    /// Reads a gzip-compressed CSV without header: feature columns, then an integer label.
    /// Features are multiplied by `scale` (e.g. 1/16 for the 8x8 digits).
    pub fn from_csv_gz(path: impl AsRef<std::path::Path>, scale: f32) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| PruneError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .map_err(io)?;
        Self::from_csv(&text, scale).map_err(|reason| PruneError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
        })
    }

    /// Parses CSV text: feature columns, then an integer label; every row the same width.
    pub fn from_csv(text: &str, scale: f32) -> std::result::Result<Self, String> {
        let mut features = Vec::new();
        let mut labels = Vec::new();
        let mut width = None;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() < 2 {
                return Err(format!("line {}: expected features and a label", i + 1));
            }
            if *width.get_or_insert(cells.len()) != cells.len() {
                return Err(format!(
                    "line {}: {} columns, expected {}",
                    i + 1,
                    cells.len(),
                    width.unwrap_or(0)
                ));
            }
            let (label, feats) = cells.split_last().expect("two or more cells");
            for c in feats {
                let v: f32 = c
                    .trim()
                    .parse()
                    .map_err(|_| format!("line {}: `{c}` is not a number", i + 1))?;
                features.push(v * scale);
            }
            let l: f32 = label
                .trim()
                .parse()
                .map_err(|_| format!("line {}: label `{label}` is not a number", i + 1))?;
            if l < 0.0 || l.fract() != 0.0 {
                return Err(format!(
                    "line {}: label `{label}` is not a class index",
                    i + 1
                ));
            }
            labels.push(l as usize);
        }
        let n_features = width.map(|w| w - 1).ok_or("no rows")?;
        let n_classes = labels.iter().max().map(|m| m + 1).unwrap_or(0);
        Ok(Dataset {
            features,
            labels,
            n_features,
            n_classes,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The rows whose features are all there: `len()` when the features hold `n_features`
    /// values per label, fewer when they are short.
    fn whole_rows(&self) -> usize {
        match self.features.len().checked_div(self.n_features) {
            Some(rows) => rows.min(self.len()),
            None => self.len(),
        }
    }

    /// The error of a dataset that cannot be cut as asked.
    fn shape_error(&self, reason: String) -> PruneError {
        PruneError::Shape {
            weight: "dataset".into(),
            shape: vec![self.len(), self.n_features],
            reason,
        }
    }

    /// Checks that the rows are whole: `features` holds `n_features` values per label.
    pub fn check(&self) -> Result<()> {
        if self.len().checked_mul(self.n_features) != Some(self.features.len()) {
            return Err(self.shape_error(format!(
                "{} feature values for {} labels of {} features each",
                self.features.len(),
                self.len(),
                self.n_features
            )));
        }
        Ok(())
    }

    /// The rows at `indices`, as a new dataset; refused, naming the row, when an index is past
    /// the end or its features are missing.
    pub fn try_subset(&self, indices: &[usize]) -> Result<Dataset> {
        let rows = self.whole_rows();
        if let Some(&bad) = indices.iter().find(|&&i| i >= rows) {
            return Err(self.shape_error(if bad < self.len() {
                format!(
                    "row {bad} has no features: {} feature values hold {rows} rows of {}",
                    self.features.len(),
                    self.n_features
                )
            } else {
                format!("row {bad} is past the end of the {} rows", self.len())
            }));
        }
        Ok(self.rows_at(indices))
    }

    /// The rows at `indices` (each below `whole_rows()`).
    fn rows_at(&self, indices: &[usize]) -> Dataset {
        let mut features = Vec::with_capacity(indices.len() * self.n_features);
        for &i in indices {
            features
                .extend_from_slice(&self.features[i * self.n_features..(i + 1) * self.n_features]);
        }
        Dataset {
            features,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            n_features: self.n_features,
            n_classes: self.n_classes,
        }
    }

    /// The rows at `indices`, as a new dataset. Indices past the end, or of rows whose features
    /// are missing, are left out; [`try_subset`](Self::try_subset) refuses them instead.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let rows = self.whole_rows();
        let kept: Vec<usize> = indices.iter().copied().filter(|&i| i < rows).collect();
        self.rows_at(&kept)
    }

    /// A seeded shuffle split into (train, test) with `test_fraction` of the rows in test;
    /// refused when the fraction is not in [0, 1] or the rows are not whole
    /// ([`check`](Self::check)).
    pub fn try_split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..=1.0).contains(&test_fraction) {
            return Err(self.shape_error(format!("test_fraction {test_fraction} is not in [0, 1]")));
        }
        self.check()?;
        Ok(self.split_at(test_fraction, seed))
    }

    fn split_at(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let rows = self.whole_rows();
        let order = shuffled(rows, seed);
        let n_test = ((rows as f64 * test_fraction).round() as usize).min(rows);
        (
            self.rows_at(&order[n_test..]),
            self.rows_at(&order[..n_test]),
        )
    }

    /// A seeded shuffle split into (train, test) with `test_fraction` of the rows in test. A
    /// fraction above 1 puts every row in test, one below 0 (or NaN) none, and rows whose
    /// features are missing are left out; [`try_split`](Self::try_split) refuses them instead.
    pub fn split(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let f = if test_fraction.is_nan() {
            0.0
        } else {
            test_fraction.clamp(0.0, 1.0)
        };
        self.split_at(f, seed)
    }
}

/// A deterministic permutation of `0..n` (Fisher-Yates over a 64-bit LCG).
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut g = Lcg::new(seed ^ 0x9E37_79B9_7F4A_7C15);
    for i in (1..n).rev() {
        let j = ((g.next_u64() >> 33) as usize) % (i + 1);
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parses_and_rejects_ragged_rows() {
        let d = Dataset::from_csv("1,2,0\n3,4,1\n", 0.5).unwrap();
        assert_eq!((d.len(), d.n_features, d.n_classes), (2, 2, 2));
        assert_eq!(d.features, vec![0.5, 1.0, 1.5, 2.0]);
        assert!(Dataset::from_csv("1,2,0\n3,1\n", 1.0)
            .unwrap_err()
            .contains("line 2"));
        assert!(Dataset::from_csv("1,x,0\n", 1.0)
            .unwrap_err()
            .contains("`x`"));
    }

    #[test]
    fn split_is_a_partition() {
        let d = Dataset::from_csv(
            &(0..10)
                .map(|i| format!("{i},{}\n", i % 2))
                .collect::<String>(),
            1.0,
        )
        .unwrap();
        let (a, b) = d.split(0.3, 7);
        assert_eq!((a.len(), b.len()), (7, 3));
        let mut all: Vec<f32> = a.features.iter().chain(&b.features).copied().collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, (0..10).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn bad_cuts_are_refused_naming_what_is_wrong() {
        let d = Dataset::from_csv("1,2,0\n3,4,1\n5,6,1\n", 1.0).unwrap();
        let e = d.try_subset(&[0, 3]).unwrap_err().to_string();
        assert!(e.contains("row 3 is past the end of the 3 rows"), "{e}");
        assert_eq!(
            d.subset(&[0, 3]).labels,
            vec![0],
            "the lenient form leaves it out"
        );
        let e = d.try_split(1.5, 7).unwrap_err().to_string();
        assert!(e.contains("test_fraction 1.5 is not in [0, 1]"), "{e}");
        assert!(d.try_split(f64::NAN, 7).is_err());
        let (train, test) = d.split(1.5, 7);
        assert_eq!((train.len(), test.len()), (0, 3));
        assert_eq!(d.split(-1.0, 7).0.len(), 3);
        // Features for two and a half rows, labels for three.
        let mut short = d.clone();
        short.features.truncate(5);
        let e = short.try_subset(&[2]).unwrap_err().to_string();
        assert!(
            e.contains("row 2 has no features: 5 feature values hold 2 rows of 2"),
            "{e}"
        );
        let e = short.try_split(0.5, 7).unwrap_err().to_string();
        assert!(
            e.contains("5 feature values for 3 labels of 2 features each"),
            "{e}"
        );
        let (train, test) = short.split(0.5, 7);
        assert_eq!(train.len() + test.len(), 2);
        assert_eq!(short.subset(&[0, 1, 2]).len(), 2);
        assert!(d.check().is_ok() && short.check().is_err());
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut p = shuffled(100, 3);
        assert_ne!(p, (0..100).collect::<Vec<_>>());
        p.sort();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
