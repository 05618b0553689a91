//! Pictures of samples: a grid of 28x28 images, each captioned (the tutorials' "look at the data"
//! step, and later the grid of misclassified test images).

use std::io::Cursor;
use std::path::Path;

use font8x8::legacy::BASIC_LEGACY;
use image::{ImageFormat, Rgb, RgbImage};

use crate::atomic;
use crate::error::{DataError, Result};
use crate::idx::{IMAGE_PIXELS, IMAGE_SIDE};

/// Caption colour for plain labels.
pub const INK: [u8; 3] = [20, 20, 20];
/// Caption colour for something wrong (e.g. a misclassification).
pub const ALERT: [u8; 3] = [200, 30, 30];

const BACKGROUND: Rgb<u8> = Rgb([245, 245, 245]);
const GLYPH: u32 = 8;
const MARGIN: u32 = 6;

/// One cell of a grid: an image and the caption drawn under it.
#[derive(Debug, Clone)]
pub struct GridCell<'a> {
    /// 784 pixel values (0 = background), row-major; drawn white-on-black like MNIST itself.
    pub pixels: &'a [u8],
    /// Text under the image (printable ASCII; other characters are drawn as `?`).
    pub caption: String,
    /// Caption colour.
    pub color: [u8; 3],
}

/// Draws `cells` in a grid of `columns` columns, each image enlarged `scale` times.
pub fn render_grid(cells: &[GridCell<'_>], columns: usize, scale: u32) -> RgbImage {
    let columns = columns.clamp(1, cells.len().max(1)) as u32;
    let rows = (cells.len() as u32).div_ceil(columns).max(1);
    let scale = scale.max(1);
    let side = IMAGE_SIDE as u32 * scale;
    let caption_height = 2 * GLYPH + 4;
    let cell_w = side + MARGIN;
    let cell_h = side + caption_height + MARGIN;
    let mut img = RgbImage::from_pixel(
        columns * cell_w + MARGIN,
        rows * cell_h + MARGIN,
        BACKGROUND,
    );
    for (i, cell) in cells.iter().enumerate() {
        let x0 = MARGIN + (i as u32 % columns) * cell_w;
        let y0 = MARGIN + (i as u32 / columns) * cell_h;
        draw_digit(&mut img, cell.pixels, x0, y0, scale);
        draw_caption(&mut img, &cell.caption, cell.color, x0, y0 + side + 2, side);
    }
    img
}

/// Encodes `img` as PNG and writes it to `path` atomically.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| DataError::Image {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    atomic::write_atomic(path, &bytes)
}

fn draw_digit(img: &mut RgbImage, pixels: &[u8], x0: u32, y0: u32, scale: u32) {
    for (i, &p) in pixels.iter().take(IMAGE_PIXELS).enumerate() {
        let (x, y) = ((i % IMAGE_SIDE) as u32, (i / IMAGE_SIDE) as u32);
        for dy in 0..scale {
            for dx in 0..scale {
                img.put_pixel(x0 + x * scale + dx, y0 + y * scale + dy, Rgb([p, p, p]));
            }
        }
    }
}

/// Draws `text` centred in a band `width` pixels wide, at 2x size if it fits, else 1x (clipped).
fn draw_caption(img: &mut RgbImage, text: &str, color: [u8; 3], x0: u32, y0: u32, width: u32) {
    let chars = text.chars().count() as u32;
    let size = if chars * GLYPH * 2 + 4 <= width { 2 } else { 1 };
    let text_width = (chars * GLYPH * size).min(width);
    let start = x0 + (width - text_width) / 2;
    let y0 = y0 + (2 - size) * GLYPH / 2;
    for (n, c) in text.chars().enumerate() {
        let glyph = BASIC_LEGACY[if c.is_ascii() {
            c as usize
        } else {
            '?' as usize
        }];
        let gx = start + n as u32 * GLYPH * size;
        if gx + GLYPH * size > x0 + width {
            break;
        }
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH {
                if bits & (1 << col) == 0 {
                    continue;
                }
                for dy in 0..size {
                    for dx in 0..size {
                        img.put_pixel(
                            gx + col * size + dx,
                            y0 + row as u32 * size + dy,
                            Rgb(color),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_expected_size_and_draws_pixels_and_captions() {
        let ink = [255u8; IMAGE_PIXELS];
        let blank = [0u8; IMAGE_PIXELS];
        let cells: Vec<GridCell> = [&ink[..], &blank[..], &ink[..]]
            .into_iter()
            .map(|pixels| GridCell {
                pixels,
                caption: "7".into(),
                color: ALERT,
            })
            .collect();
        let img = render_grid(&cells, 2, 2);
        let side = 56;
        assert_eq!(img.width(), 2 * (side + MARGIN) + MARGIN);
        assert_eq!(img.height(), 2 * (side + 2 * GLYPH + 4 + MARGIN) + MARGIN);
        assert_eq!(img.get_pixel(MARGIN + 1, MARGIN + 1), &Rgb([255, 255, 255]));
        assert_eq!(
            img.get_pixel(MARGIN + side + MARGIN + 1, MARGIN + 1),
            &Rgb([0, 0, 0])
        );
        let caption_band = (MARGIN..MARGIN + side)
            .flat_map(|x| (MARGIN + side..MARGIN + side + 2 * GLYPH + 4).map(move |y| (x, y)));
        let red = caption_band
            .filter(|&(x, y)| img.get_pixel(x, y) == &Rgb(ALERT))
            .count();
        assert!(red > 20, "caption not drawn ({red} pixels)");
    }

    #[test]
    fn long_captions_are_clipped_not_panicking() {
        let blank = [0u8; IMAGE_PIXELS];
        let cell = GridCell {
            pixels: &blank,
            caption: "a very long caption that cannot fit ✓".into(),
            color: INK,
        };
        let img = render_grid(&[cell], 5, 1);
        assert_eq!(img.width(), IMAGE_SIDE as u32 + 2 * MARGIN);
    }
}
