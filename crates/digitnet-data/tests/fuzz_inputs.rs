//! Property-based fuzzing (proptest) of everything that parses outside input: the IDX reader (raw
//! and gzip'd) and the picture-to-28x28 preprocessing. Every input, however broken, must give
//! `Ok` or an error naming the file: never a panic, never an unbounded allocation.
//!
//! `cargo fuzz` needs a nightly toolchain, which this project does not use; proptest runs on
//! stable inside `cargo test`. The default case counts keep this suite to seconds; longer runs:
//! `bash scripts/fuzz.sh [SECONDS]`, or `PROPTEST_CASES=N cargo test -p digitnet-data --test fuzz_inputs`.

use std::io::{Cursor, Write};
use std::path::Path;

use digitnet_data::idx::{IMAGE_PIXELS, IMAGES_MAGIC, LABELS_MAGIC, parse_images, parse_labels};
use digitnet_data::preprocess::{digit_from_bytes, to_mnist};
use flate2::Compression;
use flate2::write::GzEncoder;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use proptest::prelude::*;

const NAME: &str = "fuzzed-input.bin";

/// `default` cases, or `PROPTEST_CASES` when set (for long runs).
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A well-formed IDX images file of `count` images.
fn images_file(count: u32, seed: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for field in [IMAGES_MAGIC, count, 28, 28] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.extend((0..count as usize * IMAGE_PIXELS).map(|i| (i as u8).wrapping_mul(seed)));
    out
}

/// A well-formed IDX labels file of `count` labels.
fn labels_file(count: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for field in [LABELS_MAGIC, count] {
        out.extend_from_slice(&field.to_be_bytes());
    }
    out.extend((0..count).map(|i| (i % 10) as u8));
    out
}

/// Parses `bytes` as both kinds of IDX file; returns whether each succeeded. Checks that an
/// error names the file and that a success is self-consistent.
fn parse_both(bytes: &[u8]) -> (bool, bool) {
    let path = Path::new(NAME);
    let images = match parse_images(Cursor::new(bytes), path) {
        Ok(img) => {
            assert_eq!(img.pixels.len(), img.count * IMAGE_PIXELS);
            true
        }
        Err(e) => {
            assert!(e.to_string().contains(NAME), "error without the file: {e}");
            false
        }
    };
    let labels = match parse_labels(Cursor::new(bytes), path) {
        Ok(l) => {
            assert!(l.labels.iter().all(|&v| v < 10));
            true
        }
        Err(e) => {
            assert!(e.to_string().contains(NAME), "error without the file: {e}");
            false
        }
    };
    (images, labels)
}

/// One edit of a byte string: overwrite, insert, delete or truncate.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = bytes.len();
        match *e {
            Edit::Set(i, b) if n > 0 => bytes[i % n] = b,
            Edit::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Edit::Remove(i) if n > 0 => {
                bytes.remove(i % n);
            }
            Edit::Truncate(i) => bytes.truncate(i % (n + 1)),
            _ => {}
        }
    }
    bytes
}

/// Headers biased towards the interesting values (valid, zero, off by one, huge).
fn header_field() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(27),
        Just(28),
        Just(29),
        Just(u32::MAX),
        Just(10_000_001),
        0u32..64,
        any::<u32>(),
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn idx_parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_both(&bytes);
        parse_both(&gzip(&bytes));
    }

    #[test]
    fn idx_parsers_never_panic_on_structured_headers(
        magic in prop_oneof![Just(IMAGES_MAGIC), Just(LABELS_MAGIC), any::<u32>()],
        fields in proptest::collection::vec(header_field(), 0..5),
        body_len in 0usize..4000,
    ) {
        let mut bytes = magic.to_be_bytes().to_vec();
        for f in &fields {
            bytes.extend_from_slice(&f.to_be_bytes());
        }
        bytes.extend((0..body_len).map(|i| (i % 7) as u8));
        let (images_ok, labels_ok) = parse_both(&bytes);
        // Success only for exactly consistent files.
        if images_ok {
            prop_assert_eq!(magic, IMAGES_MAGIC);
            prop_assert!(fields.len() >= 3 && fields[1] == 28 && fields[2] == 28);
        }
        if labels_ok {
            prop_assert_eq!(magic, LABELS_MAGIC);
        }
    }

    #[test]
    fn mutated_idx_files_raw_and_gzipped_never_panic(
        count in 0u32..4,
        seed in any::<u8>(),
        edits in proptest::collection::vec(edit(), 1..6),
        gzip_first in any::<bool>(),
    ) {
        for original in [images_file(count, seed), labels_file(count)] {
            // Mutate the raw file, or the gzip stream itself (CRC, lengths, deflate blocks).
            let mutated = if gzip_first {
                apply(gzip(&original), &edits)
            } else {
                apply(original.clone(), &edits)
            };
            parse_both(&mutated);
            if !gzip_first {
                parse_both(&gzip(&mutated));
            }
        }
    }

    #[test]
    fn pixel_changes_in_a_valid_file_still_parse(
        count in 1u32..3,
        changes in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..20),
    ) {
        let mut bytes = images_file(count, 3);
        let body = bytes.len() - 16;
        for (i, b) in changes {
            bytes[16 + i % body] = b;
        }
        let parsed = parse_images(Cursor::new(gzip(&bytes)), Path::new(NAME)).unwrap();
        prop_assert_eq!(parsed.pixels, bytes[16..].to_vec());
    }
}

/// An image of one of the colour types users send, `w` x `h`, filled from `pixels`.
fn image_of(kind: u8, w: u32, h: u32, pixels: &[u8]) -> DynamicImage {
    let px = |x: u32, y: u32, k: usize| {
        let i = (y * w + x) as usize * 4 + k;
        if pixels.is_empty() {
            0
        } else {
            pixels[i % pixels.len()]
        }
    };
    match kind % 7 {
        0 => DynamicImage::ImageLuma8(ImageBuffer::from_fn(w, h, |x, y| Luma([px(x, y, 0)]))),
        1 => DynamicImage::ImageLumaA8(ImageBuffer::from_fn(w, h, |x, y| {
            LumaA([px(x, y, 0), px(x, y, 1)])
        })),
        2 => DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
            Rgb([px(x, y, 0), px(x, y, 1), px(x, y, 2)])
        })),
        3 => DynamicImage::ImageRgba8(ImageBuffer::from_fn(w, h, |x, y| {
            Rgba([px(x, y, 0), px(x, y, 1), px(x, y, 2), px(x, y, 3)])
        })),
        4 => DynamicImage::ImageLuma16(ImageBuffer::from_fn(w, h, |x, y| {
            Luma([u16::from(px(x, y, 0)) * 257])
        })),
        5 => DynamicImage::ImageRgba16(ImageBuffer::from_fn(w, h, |x, y| {
            Rgba([
                u16::from(px(x, y, 0)) << 8,
                u16::from(px(x, y, 1)) << 8,
                u16::from(px(x, y, 2)) << 8,
                u16::from(px(x, y, 3)) * 257,
            ])
        })),
        _ => DynamicImage::ImageRgb32F(ImageBuffer::from_fn(w, h, |x, y| {
            Rgb([
                f32::from(px(x, y, 0)) / 255.0,
                f32::from(px(x, y, 1)) / 255.0,
                f32::from(px(x, y, 2)) / 255.0,
            ])
        })),
    }
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Option<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    // JPEG has no alpha or 16-bit: compare like a user's converter would.
    let img = if format == ImageFormat::Jpeg {
        DynamicImage::ImageRgb8(img.to_rgb8())
    } else if matches!(img, DynamicImage::ImageRgb32F(_)) {
        DynamicImage::ImageRgba16(img.to_rgba16())
    } else {
        img.clone()
    };
    img.write_to(&mut out, format).ok()?;
    Some(out.into_inner())
}

fn check_digit(bytes: &[u8]) {
    match digit_from_bytes(bytes, Path::new(NAME)) {
        Ok(digit) => assert_eq!(digit.len(), IMAGE_PIXELS),
        Err(e) => assert!(e.to_string().contains(NAME), "error without the file: {e}"),
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn preprocessing_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        check_digit(&bytes);
    }

    #[test]
    fn preprocessing_handles_every_colour_type_and_size(
        kind in any::<u8>(),
        w in 1u32..48,
        h in 1u32..48,
        pixels in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let img = image_of(kind, w, h, &pixels);
        if let Some(digit) = to_mnist(&img) {
            prop_assert!(digit.iter().any(|&v| v > 0), "a found digit has ink");
        }
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            if let Some(bytes) = encode(&img, format) {
                check_digit(&bytes);
            }
        }
    }

    #[test]
    fn mutated_png_and_jpeg_files_never_panic(
        kind in any::<u8>(),
        w in 1u32..32,
        h in 1u32..32,
        pixels in proptest::collection::vec(any::<u8>(), 1..64),
        jpeg in any::<bool>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let format = if jpeg { ImageFormat::Jpeg } else { ImageFormat::Png };
        if let Some(bytes) = encode(&image_of(kind, w, h, &pixels), format) {
            check_digit(&apply(bytes, &edits));
        }
    }
}
