//! The Fashion-MNIST subset shipped in assets/fashion_mnist (see its README for the
//! classes, counts and licence), embedded in the binary so that the built-in
//! `garments` data needs no download and no path. The files are in the dataset's own
//! IDX format.

use crate::error::{Error, Result};

/// Fashion-MNIST's side: every garment is 28 x 28.
pub const SIDE: usize = 28;

/// The Fashion-MNIST labels kept, in the order of the built-in classes 1..=5.
pub const KEPT_LABELS: [u8; 5] = [0, 1, 5, 8, 9];

const TRAIN_IMAGES: &[u8] = include_bytes!("../../assets/fashion_mnist/train-images.idx");
const TRAIN_LABELS: &[u8] = include_bytes!("../../assets/fashion_mnist/train-labels.idx");
const VAL_IMAGES: &[u8] = include_bytes!("../../assets/fashion_mnist/val-images.idx");
const VAL_LABELS: &[u8] = include_bytes!("../../assets/fashion_mnist/val-labels.idx");

/// Which garments: training images draw from Fashion-MNIST's training set, validation
/// images from its test set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

/// One garment: its built-in class (1..=5) and its 28 x 28 intensities (0 = empty).
pub struct Garment<'a> {
    pub class: u8,
    pub pixels: &'a [u8],
}

/// The garments of one split, grouped by built-in class (index 0 is class 1).
pub struct Garments {
    by_class: Vec<Vec<Garment<'static>>>,
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn parse(name: &str, images: &'static [u8], labels: &'static [u8]) -> Result<Garments> {
    let bad = |why: String| Error::Usage(format!("assets/fashion_mnist/{name}: {why}"));
    if images.len() < 16
        || be_u32(images, 0) != 2051
        || labels.len() < 8
        || be_u32(labels, 0) != 2049
    {
        return Err(bad("not an IDX image and label pair".into()));
    }
    let n = be_u32(images, 4) as usize;
    let (rows, cols) = (be_u32(images, 8) as usize, be_u32(images, 12) as usize);
    if rows != SIDE || cols != SIDE || images.len() != 16 + n * SIDE * SIDE {
        return Err(bad(format!(
            "{n} images of {rows}x{cols} do not fill the file"
        )));
    }
    if be_u32(labels, 4) as usize != n || labels.len() != 8 + n {
        return Err(bad(format!("the labels do not match the {n} images")));
    }
    let mut by_class: Vec<Vec<Garment>> = KEPT_LABELS.iter().map(|_| Vec::new()).collect();
    for (i, &label) in labels[8..].iter().enumerate() {
        let class = KEPT_LABELS
            .iter()
            .position(|&l| l == label)
            .ok_or_else(|| bad(format!("image {i} has label {label}, not a kept class")))?;
        let at = 16 + i * SIDE * SIDE;
        by_class[class].push(Garment {
            class: class as u8 + 1,
            pixels: &images[at..at + SIDE * SIDE],
        });
    }
    if by_class.iter().any(Vec::is_empty) {
        return Err(bad("a class has no garment".into()));
    }
    Ok(Garments { by_class })
}

impl Garments {
    pub fn open(split: Split) -> Result<Garments> {
        match split {
            Split::Train => parse("train", TRAIN_IMAGES, TRAIN_LABELS),
            Split::Val => parse("val", VAL_IMAGES, VAL_LABELS),
        }
    }

    pub fn classes(&self) -> usize {
        self.by_class.len()
    }

    /// The garments of built-in class `class` (1..=classes).
    pub fn of_class(&self, class: u8) -> &[Garment<'static>] {
        &self.by_class[class as usize - 1]
    }

    pub fn len(&self) -> usize {
        self.by_class.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_subset_parses_with_every_class_in_both_splits() {
        let train = Garments::open(Split::Train).unwrap();
        let val = Garments::open(Split::Val).unwrap();
        assert_eq!((train.len(), val.len()), (1000, 300));
        for class in 1..=5u8 {
            assert_eq!(train.of_class(class).len(), 200);
            assert_eq!(val.of_class(class).len(), 60);
            let g = &train.of_class(class)[0];
            assert_eq!(g.class, class);
            assert!(g.pixels.iter().any(|&p| p > 128), "class {class} is blank");
        }
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let e = parse("train", &TRAIN_IMAGES[..100], TRAIN_LABELS)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("assets/fashion_mnist/train"), "{e}");
    }

    #[test]
    fn the_licence_note_ships_with_the_data() {
        let note = include_str!("../../assets/fashion_mnist/README.md");
        assert!(note.contains("Licence: MIT"), "{note}");
        assert!(note.contains("Zalando SE"), "{note}");
    }
}
