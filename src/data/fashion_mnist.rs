//! The Fashion-MNIST subset shipped in assets/fashion_mnist (see its README for the
//! classes, counts and licence), embedded in the binary so that the built-in
//! `garments` data needs no download and no path. The files are in the dataset's own
//! IDX format.

use crate::error::{Error, Result};

/// Fashion-MNIST's side: every garment is 28 x 28.
pub const SIDE: usize = 28;

/// Fashion-MNIST's class names, by its label 0..=9.
pub const NAMES: [&str; 10] = [
    "t_shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
];

/// The classes the garments use unless told otherwise: outlines that differ at a
/// glance (shirt, pullover and coat, or sneaker and ankle boot, differ in small
/// features).
pub const DEFAULT_CLASSES: [&str; 5] = ["t_shirt", "trouser", "sandal", "bag", "ankle_boot"];

/// The Fashion-MNIST labels of class names, in their order; `key` names where the
/// names came from in the error.
pub fn labels_of(names: &[String], key: &str) -> Result<Vec<u8>> {
    if names.is_empty() {
        return Err(Error::Usage(format!("{key}: no garment class given")));
    }
    let mut labels = Vec::with_capacity(names.len());
    for name in names {
        let label = NAMES.iter().position(|n| n == name).ok_or_else(|| {
            Error::Usage(format!(
                "{key}: {name:?} is not a Fashion-MNIST class (one of {})",
                NAMES.join(", ")
            ))
        })? as u8;
        if labels.contains(&label) {
            return Err(Error::Usage(format!("{key}: {name:?} is given twice")));
        }
        labels.push(label);
    }
    Ok(labels)
}

/// The default classes as owned names, for configs.
pub fn default_classes() -> Vec<String> {
    DEFAULT_CLASSES.iter().map(|s| s.to_string()).collect()
}

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

/// One garment: its built-in class (1..=classes) and its 28 x 28 intensities (0 = empty).
pub struct Garment<'a> {
    pub class: u8,
    pub pixels: &'a [u8],
}

/// The garments of one split for a choice of Fashion-MNIST labels, grouped by
/// built-in class: the label at position i of the choice is class i + 1.
pub struct Garments {
    by_class: Vec<Vec<Garment<'static>>>,
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn parse(
    name: &str,
    images: &'static [u8],
    labels: &'static [u8],
    kept: &[u8],
) -> Result<Garments> {
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
    let mut by_class: Vec<Vec<Garment>> = kept.iter().map(|_| Vec::new()).collect();
    for (i, &label) in labels[8..].iter().enumerate() {
        if label as usize >= NAMES.len() {
            return Err(bad(format!("image {i} has label {label}, not 0..=9")));
        }
        let Some(class) = kept.iter().position(|&l| l == label) else {
            continue;
        };
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
    /// The garments of `split` with Fashion-MNIST labels `kept` (from [`labels_of`]).
    pub fn open(split: Split, kept: &[u8]) -> Result<Garments> {
        match split {
            Split::Train => parse("train", TRAIN_IMAGES, TRAIN_LABELS, kept),
            Split::Val => parse("val", VAL_IMAGES, VAL_LABELS, kept),
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
        let all: Vec<u8> = (0..NAMES.len() as u8).collect();
        let train = Garments::open(Split::Train, &all).unwrap();
        let val = Garments::open(Split::Val, &all).unwrap();
        assert_eq!((train.len(), val.len()), (2000, 600));
        for class in 1..=10u8 {
            assert_eq!(train.of_class(class).len(), 200);
            assert_eq!(val.of_class(class).len(), 60);
            let g = &train.of_class(class)[0];
            assert_eq!(g.class, class);
            assert!(g.pixels.iter().any(|&p| p > 128), "class {class} is blank");
        }
    }

    #[test]
    fn a_choice_of_classes_keeps_its_order_and_the_garments_of_each() {
        let all: Vec<u8> = (0..NAMES.len() as u8).collect();
        let every = Garments::open(Split::Train, &all).unwrap();
        let names = vec!["bag".to_string(), "t_shirt".to_string()];
        let chosen = Garments::open(Split::Train, &labels_of(&names, "k").unwrap()).unwrap();
        assert_eq!(chosen.classes(), 2);
        for (class, label) in [(1u8, 8u8), (2, 0)] {
            let (a, b) = (chosen.of_class(class), every.of_class(label + 1));
            assert_eq!(a.len(), b.len());
            assert!(a.iter().zip(b).all(|(x, y)| x.pixels == y.pixels));
            assert!(a.iter().all(|g| g.class == class));
        }
    }

    #[test]
    fn unknown_or_repeated_class_names_are_refused_with_the_key() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = labels_of(&names(&["t_shirt", "sock"]), "data.source.classes")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data.source.classes") && e.contains("\"sock\""),
            "{e}"
        );
        let e = labels_of(&names(&["bag", "bag"]), "k")
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
        assert!(labels_of(&[], "k").is_err());
        assert_eq!(
            labels_of(&default_classes(), "k").unwrap(),
            vec![0, 1, 5, 8, 9]
        );
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let e = parse("train", &TRAIN_IMAGES[..100], TRAIN_LABELS, &[0])
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
