//! Property-based fuzzing (arbtest, on `arbitrary`) of everything that parses outside input: the
//! IDX reader (raw and gzip'd) and the picture-to-28x28 preprocessing. Every input, however
//! broken, must give `Ok` or an error naming the file: never a panic, never an unbounded
//! allocation.
//!
//! `cargo fuzz` needs a nightly toolchain, which this project does not use; arbtest runs on
//! stable inside `cargo test`. Each property runs for `ARBTEST_BUDGET_MS` milliseconds (default
//! 300) on fresh random inputs; a failure prints its seed, and `ARBTEST_SEED=0x...` replays it.
//! Longer runs: `bash scripts/fuzz.sh [SECONDS]`.

use std::io::{Cursor, Write};
use std::path::Path;

use crate::idx::{IMAGE_PIXELS, IMAGES_MAGIC, LABELS_MAGIC, parse_images, parse_labels};
use crate::preprocess::{digit_from_bytes, to_mnist};
use arbitrary::{Result, Unstructured};
use flate2::Compression;
use flate2::write::GzEncoder;
use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};

const NAME: &str = "fuzzed-input.bin";

/// Runs `property` on random inputs for `ARBTEST_BUDGET_MS` milliseconds (default 300).
fn fuzz(property: impl FnMut(&mut Unstructured<'_>) -> Result<()>) {
    let budget = std::env::var("ARBTEST_BUDGET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    arbtest::arbtest(property).budget_ms(budget).run();
}

/// Up to `max` arbitrary bytes.
fn bytes(u: &mut Unstructured<'_>, max: usize) -> Result<Vec<u8>> {
    let mut bytes: Vec<u8> = u.arbitrary()?;
    bytes.truncate(max);
    Ok(bytes)
}

/// Between `min` and `max` values drawn by `item`.
fn several<T>(
    u: &mut Unstructured<'_>,
    min: usize,
    max: usize,
    mut item: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(min..=max)?;
    (0..n).map(|_| item(u)).collect()
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

/// An edit, overwrites four times as likely as each other kind.
fn edit(u: &mut Unstructured<'_>) -> Result<Edit> {
    Ok(match u.int_in_range(0..=6)? {
        0..=3 => Edit::Set(u.arbitrary()?, u.arbitrary()?),
        4 => Edit::Insert(u.arbitrary()?, u.arbitrary()?),
        5 => Edit::Remove(u.arbitrary()?),
        _ => Edit::Truncate(u.arbitrary()?),
    })
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
fn header_field(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0..=8)? {
        0 => 0,
        1 => 1,
        2 => 27,
        3 => 28,
        4 => 29,
        5 => u32::MAX,
        6 => 10_000_001,
        7 => u.int_in_range(0..=63)?,
        _ => u.arbitrary()?,
    })
}

#[test]
fn idx_parsers_never_panic_on_arbitrary_bytes() {
    fuzz(|u| {
        let bytes = bytes(u, 2048)?;
        parse_both(&bytes);
        parse_both(&gzip(&bytes));
        Ok(())
    });
}

#[test]
fn idx_parsers_never_panic_on_structured_headers() {
    fuzz(|u| {
        let magic = match u.int_in_range(0..=2)? {
            0 => IMAGES_MAGIC,
            1 => LABELS_MAGIC,
            _ => u.arbitrary()?,
        };
        let fields = several(u, 0, 4, header_field)?;
        let body_len = u.int_in_range(0..=3999)?;
        let mut bytes = magic.to_be_bytes().to_vec();
        for f in &fields {
            bytes.extend_from_slice(&f.to_be_bytes());
        }
        bytes.extend((0..body_len).map(|i| (i % 7) as u8));
        let (images_ok, labels_ok) = parse_both(&bytes);
        // Success only for exactly consistent files.
        if images_ok {
            assert_eq!(magic, IMAGES_MAGIC);
            assert!(fields.len() >= 3 && fields[1] == 28 && fields[2] == 28);
        }
        if labels_ok {
            assert_eq!(magic, LABELS_MAGIC);
        }
        Ok(())
    });
}

#[test]
fn mutated_idx_files_raw_and_gzipped_never_panic() {
    fuzz(|u| {
        let count = u.int_in_range(0..=3)?;
        let seed: u8 = u.arbitrary()?;
        let edits = several(u, 1, 5, edit)?;
        let gzip_first: bool = u.arbitrary()?;
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
        Ok(())
    });
}

#[test]
fn pixel_changes_in_a_valid_file_still_parse() {
    fuzz(|u| {
        let count = u.int_in_range(1..=2)?;
        let changes = several(u, 1, 19, |u| {
            Ok((u.arbitrary::<usize>()?, u.arbitrary::<u8>()?))
        })?;
        let mut bytes = images_file(count, 3);
        let body = bytes.len() - 16;
        for (i, b) in changes {
            bytes[16 + i % body] = b;
        }
        let parsed = parse_images(Cursor::new(gzip(&bytes)), Path::new(NAME)).unwrap();
        assert_eq!(parsed.pixels, bytes[16..].to_vec());
        Ok(())
    });
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

#[test]
fn preprocessing_never_panics_on_arbitrary_bytes() {
    fuzz(|u| {
        check_digit(&bytes(u, 1024)?);
        Ok(())
    });
}

#[test]
fn preprocessing_handles_every_colour_type_and_size() {
    fuzz(|u| {
        let kind: u8 = u.arbitrary()?;
        let (w, h) = (u.int_in_range(1..=47)?, u.int_in_range(1..=47)?);
        let pixels = bytes(u, 63)?;
        let img = image_of(kind, w, h, &pixels);
        if let Some(digit) = to_mnist(&img) {
            assert!(digit.iter().any(|&v| v > 0), "a found digit has ink");
        }
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            if let Some(bytes) = encode(&img, format) {
                check_digit(&bytes);
            }
        }
        Ok(())
    });
}

#[test]
fn mutated_png_and_jpeg_files_never_panic() {
    fuzz(|u| {
        let kind: u8 = u.arbitrary()?;
        let (w, h) = (u.int_in_range(1..=31)?, u.int_in_range(1..=31)?);
        let mut pixels = bytes(u, 63)?;
        pixels.push(u.arbitrary()?);
        let format = if u.arbitrary()? {
            ImageFormat::Jpeg
        } else {
            ImageFormat::Png
        };
        let edits = several(u, 1, 5, edit)?;
        if let Some(bytes) = encode(&image_of(kind, w, h, &pixels), format) {
            check_digit(&apply(bytes, &edits));
        }
        Ok(())
    });
}
