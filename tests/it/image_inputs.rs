//! The pictures users send: 16-bit, RGBA, palette, colour, animated, JPEG, grey+alpha images of
//! real test digits are read correctly by the shipped model; empty, non-image and huge files give
//! one clear error naming the file, and a huge picture is handled within bounded memory.

#![cfg(feature = "flex")]

use crate::common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use digitnet::backend::Flex;
use digitnet::data::preprocess::{MAX_SIDE, load_digit};
use digitnet::data::{IMAGE_PIXELS, MnistBatcher};
use digitnet::train::predict;
use image::{DynamicImage, GrayImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};

const SCALE: u32 = 4;

/// Test digit `index` of the sample, enlarged, as ink strength 0..=255 per pixel, with its label.
fn digit(index: usize) -> (GrayImage, usize) {
    let images = common::sample_raw("t10k-images-idx3-ubyte");
    let labels = common::sample_raw("t10k-labels-idx1-ubyte");
    let pixels = &images[16 + index * IMAGE_PIXELS..16 + (index + 1) * IMAGE_PIXELS];
    let small = GrayImage::from_fn(28, 28, |x, y| Luma([pixels[(y * 28 + x) as usize]]));
    let side = 28 * SCALE;
    let big = image::imageops::resize(&small, side, side, image::imageops::FilterType::Triangle);
    (big, usize::from(labels[8 + index]))
}

fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A PNG written with the `png` crate: palette (`animated_with` = None) or an animated PNG whose
/// first frame is `ink` and second `animated_with`.
fn png_crate(ink: &GrayImage, animated_with: Option<&GrayImage>) -> Vec<u8> {
    let (w, h) = ink.dimensions();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        match animated_with {
            None => {
                // A 256-entry palette from paper white to ink blue; pixels are indices.
                enc.set_color(png::ColorType::Indexed);
                let palette: Vec<u8> = (0..=255u8)
                    .flat_map(|i| [255 - i, 255 - i, 255 - i / 3])
                    .collect();
                enc.set_palette(palette);
            }
            Some(_) => {
                enc.set_color(png::ColorType::Grayscale);
                enc.set_animated(2, 0).unwrap();
            }
        }
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        let paper = |img: &GrayImage| -> Vec<u8> { img.as_raw().iter().map(|v| 255 - v).collect() };
        match animated_with {
            None => writer.write_image_data(ink.as_raw()).unwrap(),
            Some(second) => {
                writer.write_image_data(&paper(ink)).unwrap();
                writer.write_image_data(&paper(second)).unwrap();
            }
        }
        writer.finish().unwrap();
    }
    out
}

/// Every colour type users send, from test digit `index`: (file name, bytes).
fn variants(index: usize) -> Vec<(String, Vec<u8>)> {
    let (ink, _) = digit(index);
    let (w, h) = ink.dimensions();
    let at = |x: u32, y: u32| ink.get_pixel(x, y).0[0];
    let on_paper = |x, y| 255 - at(x, y);
    let l16 = DynamicImage::ImageLuma16(ImageBuffer::from_fn(w, h, |x, y| {
        Luma([u16::from(on_paper(x, y)) * 257])
    }));
    // Black ink whose only trace is alpha: the background is fully transparent.
    let rgba =
        DynamicImage::ImageRgba8(ImageBuffer::from_fn(w, h, |x, y| Rgba([0, 0, 0, at(x, y)])));
    let rgba16 = DynamicImage::ImageRgba16(ImageBuffer::from_fn(w, h, |x, y| {
        Rgba([0, 0, 0, u16::from(at(x, y)) * 257])
    }));
    let la = DynamicImage::ImageLumaA8(ImageBuffer::from_fn(w, h, |x, y| {
        LumaA([on_paper(x, y), 255])
    }));
    // Blue ballpoint on yellowish paper.
    let colour = DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
        let t = f32::from(at(x, y)) / 255.0;
        let mix = |paper: f32, pen: f32| (paper + (pen - paper) * t).round() as u8;
        Rgb([mix(250.0, 20.0), mix(240.0, 40.0), mix(200.0, 160.0)])
    }));
    let (other, _) = digit(index + 1);
    vec![
        ("gray16.png".into(), encode(&l16, ImageFormat::Png)),
        (
            "rgba-transparent.png".into(),
            encode(&rgba, ImageFormat::Png),
        ),
        ("rgba16.png".into(), encode(&rgba16, ImageFormat::Png)),
        ("gray-alpha.png".into(), encode(&la, ImageFormat::Png)),
        ("colour.png".into(), encode(&colour, ImageFormat::Png)),
        ("colour.jpg".into(), encode(&colour, ImageFormat::Jpeg)),
        ("palette.png".into(), png_crate(&ink, None)),
        ("animated.png".into(), png_crate(&ink, Some(&other))),
    ]
}

#[test]
fn every_colour_type_is_read_correctly() {
    let device = Default::default();
    let (_, model) = digitnet::shipped::load::<Flex>(&device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for index in 0..6 {
        let (_, label) = digit(index);
        for (name, bytes) in variants(index) {
            files.push((save(dir.path(), &format!("{index}-{name}"), &bytes), label));
        }
    }
    let digits: Vec<_> = files.iter().map(|(p, _)| load_digit(p).unwrap()).collect();
    let predictions = predict(&model, &digits, &MnistBatcher::default(), &device);
    let wrong: Vec<String> = files
        .iter()
        .zip(&predictions)
        .filter(|((_, label), p)| p.digit != *label)
        .map(|((path, label), p)| format!("{} ({label}) read as {}", path.display(), p.digit))
        .collect();
    assert!(wrong.is_empty(), "misread: {wrong:#?}");
}

/// A PNG that declares `w` x `h` pixels but holds almost no data (CRCs correct).
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8; 4], data: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&crc.sum().to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grey, deflate, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// Runs `digitnet predict` on `path`; returns (exit code, stderr).
fn cli_predict(path: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_digitnet"))
        .arg("predict")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_files_give_one_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.png", Vec::new(), "an empty file, not an image"),
        (
            "notes.png",
            b"these are my notes\n".to_vec(),
            "not a PNG or JPEG image",
        ),
        ("huge.png", png_header_only(20_000, 20_000), "too large"),
        (
            "anim.gif",
            // A 1x1 GIF89a: header, logical screen, 2-colour table, image, one LZW block.
            b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b"
                .to_vec(),
            "a Gif image; digitnet reads PNG and JPEG",
        ),
        (
            "blank.png",
            encode(
                &DynamicImage::ImageLuma8(GrayImage::from_pixel(50, 50, Luma([255]))),
                ImageFormat::Png,
            ),
            "the image is blank",
        ),
        (
            "cut.png",
            {
                let mut b = variants(0).remove(0).1;
                b.truncate(b.len() / 2);
                b
            },
            "cannot decode",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = save(dir.path(), name, &bytes);
        let (code, stderr) = cli_predict(&path);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains(expected),
            "{name}: {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{name}: one line: {stderr}"
        );
    }
    let (code, stderr) = cli_predict(&dir.path().join("missing.png"));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("missing.png") && stderr.contains("No such file"));
    assert_eq!(
        stderr.matches("No such file").count(),
        1,
        "the cause is not repeated: {stderr}"
    );
}

/// Peak resident memory of the largest child process this test process has waited for, in MiB.
fn children_peak_rss_mib() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is a valid selector.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialised by the successful call above (and zeroed before it).
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss as f64 / 1024.0 // kilobytes on Linux
}

#[test]
fn huge_pictures_stay_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // A real picture at the largest accepted side: a thick stroke on white, compressed to a few
    // hundred KB, decoding to 64 MiB of grey.
    let side = MAX_SIDE;
    let stroke = GrayImage::from_fn(side, side, |x, y| {
        let on =
            (side / 2..side / 2 + side / 20).contains(&x) && (side / 8..side * 7 / 8).contains(&y);
        Luma([if on { 0 } else { 255 }])
    });
    let big = save(
        dir.path(),
        "big.png",
        &encode(&DynamicImage::ImageLuma8(stroke), ImageFormat::Png),
    );
    let huge = save(dir.path(), "huge.png", &png_header_only(20_000, 20_000));
    let (code, stderr) = cli_predict(&big);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _) = cli_predict(&huge);
    assert_eq!(code, Some(1));
    let peak = children_peak_rss_mib();
    assert!(
        peak < 1024.0,
        "digitnet predict peaked at {peak:.0} MiB on a {side}x{side} picture"
    );
}
