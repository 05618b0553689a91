//! Turning a user's picture of a digit into an MNIST-style 28x28 image, the way MNIST itself was
//! made: grayscale, light background inverted, cropped to the ink, scaled to fit 20x20 keeping
//! the aspect ratio, and centred by its centre of mass in a 28x28 frame.

use std::io::BufRead;
use std::io::Seek;
use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Limits, Luma};

use crate::error::{DataError, Result};
use crate::idx::{IMAGE_PIXELS, IMAGE_SIDE};

/// The largest width or height accepted (larger images are refused before decoding).
pub const MAX_SIDE: u32 = 8192;
/// The most memory the decoder may allocate.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;
/// Side of the box the digit is scaled into (MNIST: 20).
pub const DIGIT_BOX: u32 = 20;

fn image_error(path: &Path, message: impl Into<String>) -> DataError {
    DataError::BadImage {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads an image file (PNG or JPEG) and converts it to a 28x28 MNIST-style image.
pub fn load_digit(path: &Path) -> Result<[u8; IMAGE_PIXELS]> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, "open", e))?;
    // The format comes from the content alone, never from the file name.
    decode_digit(ImageReader::new(std::io::BufReader::new(file)), path)
}

/// Like [`load_digit`] for an image held in memory; `name` only labels errors.
pub fn digit_from_bytes(bytes: &[u8], name: &Path) -> Result<[u8; IMAGE_PIXELS]> {
    decode_digit(ImageReader::new(std::io::Cursor::new(bytes)), name)
}

fn decode_digit<R: BufRead + Seek>(
    reader: ImageReader<R>,
    path: &Path,
) -> Result<[u8; IMAGE_PIXELS]> {
    let mut reader = reader
        .with_guessed_format()
        .map_err(|e| DataError::io(path, "read", e))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        Some(other) => {
            return Err(image_error(
                path,
                format!("a {other:?} image; digitnet reads PNG and JPEG"),
            ));
        }
        None => {
            let empty = reader.into_inner().fill_buf().is_ok_and(|b| b.is_empty());
            let what = if empty {
                "an empty file, not an image"
            } else {
                "not a PNG or JPEG image"
            };
            return Err(image_error(path, what));
        }
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => image_error(
            path,
            format!(
                "too large: digitnet reads pictures of at most {MAX_SIDE}x{MAX_SIDE} pixels \
                 ({} MiB decoded)",
                MAX_DECODE_BYTES >> 20
            ),
        ),
        other => image_error(path, format!("cannot decode: {other}")),
    })?;
    to_mnist(&img).ok_or_else(|| image_error(path, "no digit found: the image is blank"))
}

/// Converts a decoded image to a 28x28 MNIST-style image (0 = background, 255 = ink), or `None`
/// when it holds no ink at all.
pub fn to_mnist(img: &DynamicImage) -> Option<[u8; IMAGE_PIXELS]> {
    let gray = ink_map(img);
    let (x0, y0, x1, y1) = ink_bounds(&gray)?;
    let crop = image::imageops::crop_imm(&gray, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let (w, h) = crop.dimensions();
    let scale = DIGIT_BOX as f64 / w.max(h) as f64;
    let (sw, sh) = (
        ((w as f64 * scale).round() as u32).clamp(1, DIGIT_BOX),
        ((h as f64 * scale).round() as u32).clamp(1, DIGIT_BOX),
    );
    let scaled = image::imageops::resize(&crop, sw, sh, FilterType::Triangle);
    Some(centre_by_mass(&scaled))
}

/// Grayscale "ink" map: transparent pixels count as background, and a light background is
/// inverted so that ink is bright, as in MNIST.
fn ink_map(img: &DynamicImage) -> GrayImage {
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut gray = GrayImage::new(w, h);
    for (x, y, p) in rgba.enumerate_pixels() {
        let [r, g, b, a] = p.0;
        let luma = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
        let alpha = f64::from(a) / 255.0;
        // Composite over white: a transparent pixel is paper.
        let v = luma * alpha + 255.0 * (1.0 - alpha);
        gray.put_pixel(x, y, Luma([v.round() as u8]));
    }
    let border: Vec<u8> = (0..w)
        .flat_map(|x| [(x, 0), (x, h - 1)])
        .chain((0..h).flat_map(|y| [(0, y), (w - 1, y)]))
        .map(|(x, y)| gray.get_pixel(x, y).0[0])
        .collect();
    let background = border.iter().map(|&v| u64::from(v)).sum::<u64>() / border.len().max(1) as u64;
    if background > 127 {
        image::imageops::invert(&mut gray);
    }
    // Remove the background level so that faint paper texture or JPEG noise is not ink.
    let floor = if background > 127 {
        255 - background
    } else {
        background
    } as u8;
    for p in gray.pixels_mut() {
        p.0[0] = p.0[0].saturating_sub(floor);
    }
    gray
}

/// Bounding box (inclusive) of pixels with at least 20% of the strongest ink.
fn ink_bounds(gray: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let max = gray.pixels().map(|p| p.0[0]).max()?;
    if max < 32 {
        return None;
    }
    let threshold = (u16::from(max) / 5) as u8;
    let mut bounds: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in gray.enumerate_pixels() {
        if p.0[0] > threshold {
            bounds = Some(match bounds {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    bounds
}

/// Places `digit` in a 28x28 frame so that its centre of mass lands on the centre.
fn centre_by_mass(digit: &GrayImage) -> [u8; IMAGE_PIXELS] {
    let (w, h) = digit.dimensions();
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y, p) in digit.enumerate_pixels() {
        let v = f64::from(p.0[0]);
        mass += v;
        mx += v * (x as f64 + 0.5);
        my += v * (y as f64 + 0.5);
    }
    let (cx, cy) = if mass > 0.0 {
        (mx / mass, my / mass)
    } else {
        (w as f64 / 2.0, h as f64 / 2.0)
    };
    let half = IMAGE_SIDE as f64 / 2.0;
    let dx = (half - cx).round() as i64;
    let dy = (half - cy).round() as i64;
    let mut out = [0u8; IMAGE_PIXELS];
    for (x, y, p) in digit.enumerate_pixels() {
        let (tx, ty) = (x as i64 + dx, y as i64 + dy);
        if (0..IMAGE_SIDE as i64).contains(&tx) && (0..IMAGE_SIDE as i64).contains(&ty) {
            out[ty as usize * IMAGE_SIDE + tx as usize] = p.0[0];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    /// A black-on-white picture of a bar, off-centre, at 10x scale.
    fn bar_picture() -> DynamicImage {
        let mut img = RgbaImage::from_pixel(200, 300, Rgba([250, 250, 245, 255]));
        for y in 40..240 {
            for x in 20..60 {
                img.put_pixel(x, y, Rgba([10, 10, 10, 255]));
            }
        }
        DynamicImage::ImageRgba8(img)
    }

    #[test]
    fn light_background_is_inverted_cropped_scaled_and_centred() {
        let out = to_mnist(&bar_picture()).unwrap();
        let ink: Vec<(usize, usize)> = (0..IMAGE_PIXELS)
            .filter(|&i| out[i] > 128)
            .map(|i| (i % IMAGE_SIDE, i / IMAGE_SIDE))
            .collect();
        let (ys, xs): (Vec<usize>, Vec<usize>) = ink.iter().map(|&(x, y)| (y, x)).unzip();
        // 200 px tall -> 20 rows; 40 px wide -> 4 columns; centred on (14, 14).
        let height = ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1;
        let width = xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1;
        assert!((19..=20).contains(&height), "height {height}");
        assert!((3..=5).contains(&width), "width {width}");
        let cx = xs.iter().sum::<usize>() as f64 / xs.len() as f64;
        let cy = ys.iter().sum::<usize>() as f64 / ys.len() as f64;
        assert!(
            (cx - 13.5).abs() <= 1.0 && (cy - 13.5).abs() <= 1.0,
            "({cx}, {cy})"
        );
        // Corners are background.
        assert_eq!(out[0], 0);
        assert_eq!(out[IMAGE_PIXELS - 1], 0);
    }

    #[test]
    fn transparent_background_counts_as_paper() {
        let mut img = RgbaImage::from_pixel(50, 50, Rgba([0, 0, 0, 0]));
        for y in 10..40 {
            for x in 20..30 {
                img.put_pixel(x, y, Rgba([0, 0, 0, 255]));
            }
        }
        let out = to_mnist(&DynamicImage::ImageRgba8(img)).unwrap();
        assert!(out.iter().filter(|&&v| v > 200).count() > 20);
        assert_eq!(out[0], 0);
    }

    #[test]
    fn blank_images_have_no_digit() {
        let white = DynamicImage::ImageRgba8(RgbaImage::from_pixel(30, 30, Rgba([255; 4])));
        assert!(to_mnist(&white).is_none());
        let err = digit_from_bytes(b"not an image", Path::new("x.png")).unwrap_err();
        assert!(err.to_string().contains("x.png"), "{err}");
    }
}
