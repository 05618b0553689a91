//! Random distortions of training images: an affine warp (rotation, translation, scale, shear)
//! and optionally an elastic one (Simard et al., 2003), sampled bilinearly on the CPU.
//!
//! Every distortion is a pure function of the run's seed, the image's index and how many times
//! that image has been drawn before, so a run is reproducible whatever the number of loader
//! threads or the order they finish in. [`AugmentedDataset`] applies it to a training split
//! inside the data loader, before [`MnistBatcher`](crate::MnistBatcher) normalises the batch;
//! validation and test splits are never wrapped.

use std::sync::atomic::{AtomicU32, Ordering};

use burn::config::Config;
use burn::data::dataset::Dataset;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::error::{DataError, Result};
use crate::idx::{IMAGE_PIXELS, IMAGE_SIDE};
use crate::mnist::MnistItem;

/// How much the training images are distorted; each image gets its own random draw within these
/// bounds. The defaults are the usual MNIST ones (about what Burn's MNIST example and the best
/// published single CNNs use); [`AugmentConfig::identity`] distorts nothing.
#[derive(Config, Debug, PartialEq)]
pub struct AugmentConfig {
    /// Largest rotation, in degrees either way (at most 180).
    #[config(default = 10.0)]
    pub rotation: f64,
    /// Largest shift, in pixels along each axis either way.
    #[config(default = 2.0)]
    pub translation: f64,
    /// Smallest scale factor (above 0).
    #[config(default = 0.9)]
    pub scale_min: f64,
    /// Largest scale factor (at least `scale_min`).
    #[config(default = 1.1)]
    pub scale_max: f64,
    /// Largest horizontal shear, in degrees either way (below 90).
    #[config(default = 10.0)]
    pub shear: f64,
    /// Strength of the elastic distortion, in pixels (0 = none; Simard et al. use 34 with a
    /// sigma of 4).
    #[config(default = 0.0)]
    pub elastic_alpha: f64,
    /// Smoothness of the elastic displacement field: the Gaussian's sigma, in pixels.
    #[config(default = 4.0)]
    pub elastic_sigma: f64,
}

impl AugmentConfig {
    /// No distortion at all: the augmented image equals the original, bit for bit.
    pub fn identity() -> Self {
        Self::new()
            .with_rotation(0.0)
            .with_translation(0.0)
            .with_scale_min(1.0)
            .with_scale_max(1.0)
            .with_shear(0.0)
            .with_elastic_alpha(0.0)
    }

    /// Checks every bound; a bad one is [`DataError::InvalidAugment`] naming it.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("rotation", self.rotation),
            ("translation", self.translation),
            ("scale_min", self.scale_min),
            ("scale_max", self.scale_max),
            ("shear", self.shear),
            ("elastic_alpha", self.elastic_alpha),
            ("elastic_sigma", self.elastic_sigma),
        ];
        if let Some((name, value)) = fields.iter().find(|(_, v)| !v.is_finite()) {
            return invalid(format!("{name} must be a finite number, not {value}"));
        }
        let checks = [
            (
                (0.0..=180.0).contains(&self.rotation),
                "rotation must be 0 to 180 degrees",
            ),
            (
                (0.0..IMAGE_SIDE as f64).contains(&self.translation),
                "translation must be 0 to less than 28 pixels",
            ),
            (self.scale_min > 0.0, "scale_min must be above 0"),
            (
                self.scale_max >= self.scale_min,
                "scale_max must be at least scale_min",
            ),
            (
                (0.0..90.0).contains(&self.shear),
                "shear must be 0 to less than 90 degrees",
            ),
            (self.elastic_alpha >= 0.0, "elastic_alpha must be 0 or more"),
            (self.elastic_sigma > 0.0, "elastic_sigma must be above 0"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, problem)) => invalid(format!("{problem} (the config says {self:?})")),
            None => Ok(()),
        }
    }
}

fn invalid<T>(message: String) -> Result<T> {
    Err(DataError::InvalidAugment(message))
}

/// Draws distorted copies of images: the same `(index, draw)` always gives the same copy.
#[derive(Debug, Clone)]
pub struct Augmenter {
    config: AugmentConfig,
    seed: u64,
    /// The elastic field's 1-D Gaussian kernel (empty when elastic distortion is off).
    kernel: Vec<f32>,
}

impl Augmenter {
    /// An augmenter for `config` (validated here) whose draws all derive from `seed`.
    pub fn new(config: AugmentConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let kernel = match config.elastic_alpha > 0.0 {
            true => gaussian_kernel(config.elastic_sigma),
            false => Vec::new(),
        };
        Ok(Self {
            config,
            seed,
            kernel,
        })
    }

    /// The configuration it draws from.
    pub fn config(&self) -> &AugmentConfig {
        &self.config
    }

    /// The distorted copy of `image` (784 pixels, row-major) for its `draw`-th use (the epoch,
    /// counted from 0) as the image at `index` of its split.
    pub fn augment(&self, image: &[u8], index: usize, draw: u32) -> [u8; IMAGE_PIXELS] {
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, index as u64, u64::from(draw)));
        let inverse = self.draw_affine(&mut rng);
        let field = (!self.kernel.is_empty()).then(|| self.draw_elastic(&mut rng));
        let padded = padded(image);
        let mut out = [0u8; IMAGE_PIXELS];
        let centre = (IMAGE_SIDE as f64 - 1.0) / 2.0;
        // Along a row the source point moves by the map's first column.
        let step = (fixed(inverse.m[0][0]), fixed(inverse.m[1][0]));
        for (y, row) in out.chunks_exact_mut(IMAGE_SIDE).enumerate() {
            let (sx, sy) = inverse.apply(-centre, y as f64 - centre);
            let (sx, sy) = (fixed(sx + centre + BORDER_F), fixed(sy + centre + BORDER_F));
            for (x, pixel) in row.iter_mut().enumerate() {
                let (px, py) = (sx + x as i64 * step.0, sy + x as i64 * step.1);
                *pixel = match &field {
                    Some((dx, dy)) => {
                        let at = y * IMAGE_SIDE + x;
                        sample(&padded, px + dx[at], py + dy[at])
                    }
                    None => sample(&padded, px, py),
                };
            }
        }
        out
    }

    /// The inverse of a random affine map (rotation · shear · scale, then a shift), which takes
    /// an output pixel (relative to the centre) to where it is read in the input.
    fn draw_affine(&self, rng: &mut SmallRng) -> Affine {
        let c = &self.config;
        let angle = symmetric(rng, c.rotation).to_radians();
        let shear = symmetric(rng, c.shear).to_radians().tan();
        let scale = rng.random_range(c.scale_min..=c.scale_max);
        let (tx, ty) = (symmetric(rng, c.translation), symmetric(rng, c.translation));
        let (sin, cos) = angle.sin_cos();
        // Forward: [x', y'] = R [[1, shear], [0, 1]] s [x, y] + t.
        let forward = [
            [cos * scale, (cos * shear - sin) * scale],
            [sin * scale, (sin * shear + cos) * scale],
        ];
        let det = forward[0][0] * forward[1][1] - forward[0][1] * forward[1][0];
        let m = [
            [forward[1][1] / det, -forward[0][1] / det],
            [-forward[1][0] / det, forward[0][0] / det],
        ];
        Affine {
            m,
            shift: [
                -(m[0][0] * tx + m[0][1] * ty),
                -(m[1][0] * tx + m[1][1] * ty),
            ],
        }
    }

    /// A smooth random displacement field (uniform noise blurred by a Gaussian, times alpha),
    /// one `(dx, dy)` per pixel, in fixed point.
    fn draw_elastic(&self, rng: &mut SmallRng) -> (Vec<i64>, Vec<i64>) {
        let mut noise = || -> Vec<f32> {
            (0..IMAGE_PIXELS)
                .map(|_| rng.random_range(-1.0f32..=1.0))
                .collect()
        };
        let (dx, dy) = (noise(), noise());
        let alpha = self.config.elastic_alpha;
        let smooth = |field: Vec<f32>| -> Vec<i64> {
            blur(&field, &self.kernel)
                .into_iter()
                .map(|v| fixed(f64::from(v) * alpha))
                .collect()
        };
        (smooth(dx), smooth(dy))
    }
}

/// A 2x2 linear map and a shift.
struct Affine {
    m: [[f64; 2]; 2],
    shift: [f64; 2],
}

impl Affine {
    fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let [[a, b], [c, d]] = self.m;
        (a * x + b * y + self.shift[0], c * x + d * y + self.shift[1])
    }
}

/// Uniform in `[-bound, bound]`.
fn symmetric(rng: &mut SmallRng, bound: f64) -> f64 {
    rng.random_range(-bound..=bound)
}

/// SplitMix64's finaliser over the three inputs: nearby `(index, draw)` pairs get unrelated
/// generator seeds.
fn mix(seed: u64, index: u64, draw: u64) -> u64 {
    let mut z = seed
        ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ draw.wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(31);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fractional bits of the warp's fixed-point coordinates (1/65536 of a pixel): the warp runs in
/// integer arithmetic, with no float-to-int conversion per pixel.
const FRACTION_BITS: u32 = 16;

/// Background pixels on each side of the copy of an image that [`sample`] reads.
const BORDER: usize = 2;
const BORDER_F: f64 = BORDER as f64;
const PADDED_SIDE: usize = IMAGE_SIDE + 2 * BORDER;
/// 32 x 32: a power of two, see [`sample`].
const PADDED_PIXELS: usize = PADDED_SIDE * PADDED_SIDE;

/// `v` pixels in fixed point. Limited to 2^24 pixels either way, which keeps every sum of the
/// warp far inside `i64`; only a scale below about 1e-6 comes near it.
fn fixed(v: f64) -> i64 {
    const LIMIT: f64 = (1u64 << 24) as f64;
    (v.clamp(-LIMIT, LIMIT) * f64::from(1u32 << FRACTION_BITS)) as i64
}

/// `image` with a border of [`BORDER`] background pixels.
fn padded(image: &[u8]) -> [u16; PADDED_PIXELS] {
    let mut out = [0u16; PADDED_PIXELS];
    let rows = out.chunks_exact_mut(PADDED_SIDE).skip(BORDER);
    for (row, src) in rows.zip(image.chunks_exact(IMAGE_SIDE)) {
        for (d, &s) in row[BORDER..].iter_mut().zip(src) {
            *d = u16::from(s);
        }
    }
    out
}

/// The pixel value at fixed-point `(x, y)` of the padded image, interpolated between the four
/// nearest pixels, 0 outside the image. At whole coordinates it is that pixel's value exactly.
/// A point is first clamped into the border, where all four neighbours are background, so no
/// neighbour needs a check.
fn sample(padded: &[u16; PADDED_PIXELS], x: i64, y: i64) -> u8 {
    const ONE: u64 = 1 << FRACTION_BITS;
    const HI: i64 = ((IMAGE_SIDE + BORDER) as i64) << FRACTION_BITS;
    let (x, y) = (x.clamp(0, HI) as u64, y.clamp(0, HI) as u64);
    let (xi, yi) = ((x >> FRACTION_BITS) as usize, (y >> FRACTION_BITS) as usize);
    let (fx, fy) = (x & (ONE - 1), y & (ONE - 1));
    let i = yi * PADDED_SIDE + xi;
    // With `xi, yi <= 30` every index is at most 1023: the mask changes none, it only spares the
    // bounds checks.
    let p = |o: usize| u64::from(padded[(i + o) & (PADDED_PIXELS - 1)]);
    let top = p(0) * (ONE - fx) + p(1) * fx;
    let bottom = p(PADDED_SIDE) * (ONE - fx) + p(PADDED_SIDE + 1) * fx;
    // At most 255 * 2^32: adding a half and shifting rounds it.
    ((top * (ONE - fy) + bottom * fy + (1 << 31)) >> (2 * FRACTION_BITS)) as u8
}

/// A normalised 1-D Gaussian of `sigma`, three sigmas each side.
fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| (w / total) as f32).collect()
}

/// `field` (28x28) blurred by `kernel` along rows then columns, zero outside the image.
fn blur(field: &[f32], kernel: &[f32]) -> Vec<f32> {
    let radius = (kernel.len() / 2) as isize;
    let pass = |input: &[f32], step: (usize, usize)| -> Vec<f32> {
        let mut out = vec![0f32; IMAGE_PIXELS];
        for (at, value) in out.iter_mut().enumerate() {
            let (x, y) = ((at % IMAGE_SIDE) as isize, (at / IMAGE_SIDE) as isize);
            for (k, weight) in kernel.iter().enumerate() {
                let offset = k as isize - radius;
                let (sx, sy) = (x + offset * step.0 as isize, y + offset * step.1 as isize);
                if (0..IMAGE_SIDE as isize).contains(&sx) && (0..IMAGE_SIDE as isize).contains(&sy)
                {
                    *value += weight * input[sy as usize * IMAGE_SIDE + sx as usize];
                }
            }
        }
        out
    };
    pass(&pass(field, (1, 0)), (0, 1))
}

/// A training split whose every image is distorted anew each time the loader draws it (once an
/// epoch), by an [`Augmenter`]; labels are unchanged.
#[derive(Debug)]
pub struct AugmentedDataset<D> {
    inner: D,
    augmenter: Augmenter,
    /// How many times each index has been drawn: the `draw` argument of [`Augmenter::augment`].
    draws: Vec<AtomicU32>,
}

impl<D: Dataset<MnistItem>> AugmentedDataset<D> {
    /// Wraps `inner`. `first_epoch` is the number of epochs already trained (when resuming), so
    /// that a resumed run sees the distortions an uninterrupted one would have.
    pub fn new(inner: D, augmenter: Augmenter, first_epoch: u32) -> Self {
        let draws = (0..inner.len())
            .map(|_| AtomicU32::new(first_epoch))
            .collect();
        Self {
            inner,
            augmenter,
            draws,
        }
    }
}

impl<D: Dataset<MnistItem>> Dataset<MnistItem> for AugmentedDataset<D> {
    fn get(&self, index: usize) -> Option<MnistItem> {
        let item = self.inner.get(index)?;
        let draw = self.draws.get(index)?.fetch_add(1, Ordering::Relaxed);
        Some(MnistItem {
            image: self.augmenter.augment(&item.image, index, draw),
            label: item.label,
        })
    }

    fn len(&self) -> usize {
        self.inner.len()
    }
}

#[cfg(test)]
mod tests {
    use burn::data::dataset::InMemDataset;

    use super::*;

    /// An 8x8 white square centred on the image's centre (pixels 10..=17 each way).
    fn centred_square() -> [u8; IMAGE_PIXELS] {
        std::array::from_fn(|at| {
            let (x, y) = (at % IMAGE_SIDE, at / IMAGE_SIDE);
            if (10..=17).contains(&x) && (10..=17).contains(&y) {
                255
            } else {
                0
            }
        })
    }

    /// Something with structure everywhere, so that any distortion shows.
    fn texture() -> [u8; IMAGE_PIXELS] {
        std::array::from_fn(|at| ((at * 37) % 256) as u8)
    }

    fn ink(image: &[u8]) -> f64 {
        image.iter().map(|&p| f64::from(p)).sum()
    }

    #[test]
    fn the_identity_setting_returns_every_image_unchanged() {
        let augmenter = Augmenter::new(AugmentConfig::identity(), 7).unwrap();
        let image = texture();
        for (index, draw) in [(0, 0), (5, 1), (59_999, 30)] {
            assert_eq!(augmenter.augment(&image, index, draw), image);
        }
    }

    #[test]
    fn a_draw_is_a_function_of_seed_index_and_draw_count() {
        let image = texture();
        let config = AugmentConfig::new().with_elastic_alpha(34.0);
        let a = Augmenter::new(config.clone(), 1).unwrap();
        let again = Augmenter::new(config.clone(), 1).unwrap();
        let other_seed = Augmenter::new(config, 2).unwrap();
        let first = a.augment(&image, 3, 0);
        assert_eq!(first, again.augment(&image, 3, 0));
        assert_ne!(first, image);
        assert_ne!(first, a.augment(&image, 3, 1));
        assert_ne!(first, a.augment(&image, 4, 0));
        assert_ne!(first, other_seed.augment(&image, 3, 0));
    }

    /// Bilinear interpolation in floating point, reading 0 outside the image: the definition.
    fn bilinear(image: &[u8], x: f64, y: f64) -> f64 {
        let at = |xi: f64, yi: f64| -> f64 {
            let inside =
                (0.0..IMAGE_SIDE as f64).contains(&xi) && (0.0..IMAGE_SIDE as f64).contains(&yi);
            match inside {
                true => f64::from(image[yi as usize * IMAGE_SIDE + xi as usize]),
                false => 0.0,
            }
        };
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
        let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
        top * (1.0 - fy) + bottom * fy
    }

    #[test]
    fn a_sample_is_bilinear_interpolation_rounded_and_0_outside() {
        let image = texture();
        let padded = padded(&image);
        // Points on a fine grid from far outside to far outside, edges and corners included.
        for i in 0..=400 {
            for j in 0..=400 {
                let (x, y) = (f64::from(i) * 0.09 - 4.0, f64::from(j) * 0.09 - 4.0);
                let got = sample(&padded, fixed(x + BORDER_F), fixed(y + BORDER_F));
                let want = bilinear(&image, x, y);
                // Rounding, plus the fixed point's 255 * 2^-16 per interpolation step.
                assert!(
                    (f64::from(got) - want).abs() <= 0.51,
                    "({x}, {y}): {got} vs {want}"
                );
                if x <= -1.0 || y <= -1.0 || x >= IMAGE_SIDE as f64 || y >= IMAGE_SIDE as f64 {
                    assert_eq!(got, 0, "({x}, {y})");
                }
            }
        }
        assert_eq!(sample(&padded, fixed(-1e30), fixed(1e30)), 0);
    }

    #[test]
    fn scaling_by_one_half_shrinks_about_the_centre() {
        let config = AugmentConfig::identity()
            .with_scale_min(0.5)
            .with_scale_max(0.5);
        let image = centred_square();
        let out = Augmenter::new(config, 0).unwrap().augment(&image, 0, 0);
        // The 8x8 square becomes a 4x4 one on pixels 12..=15 (edges interpolated).
        let ratio = ink(&out) / ink(&image);
        assert!((0.2..0.3).contains(&ratio), "{ratio}");
        assert_eq!(out[13 * IMAGE_SIDE + 13], 255);
        assert_eq!(out[14 * IMAGE_SIDE + 14], 255);
        assert_eq!(out[10 * IMAGE_SIDE + 10], 0);
        assert_eq!(out[17 * IMAGE_SIDE + 17], 0);
    }

    #[test]
    fn the_default_distortions_keep_the_ink_and_stay_near_the_centre() {
        let image = centred_square();
        let augmenter = Augmenter::new(AugmentConfig::new(), 11).unwrap();
        for index in 0..50 {
            let out = augmenter.augment(&image, index, 0);
            // Scale 0.9-1.1 changes the area by at most about 21% either way.
            let ratio = ink(&out) / ink(&image);
            assert!((0.75..1.3).contains(&ratio), "{index}: {ratio}");
            let (mut cx, mut cy) = (0.0, 0.0);
            for (at, &p) in out.iter().enumerate() {
                cx += (at % IMAGE_SIDE) as f64 * f64::from(p);
                cy += (at / IMAGE_SIDE) as f64 * f64::from(p);
            }
            let (cx, cy) = (cx / ink(&out), cy / ink(&out));
            // A shift of at most 2 pixels each way.
            assert!(
                (cx - 13.5).abs() <= 2.01 && (cy - 13.5).abs() <= 2.01,
                "{cx} {cy}"
            );
        }
    }

    #[test]
    fn the_dataset_draws_anew_each_epoch_and_keeps_labels_and_length() {
        let items: Vec<MnistItem> = (0..3)
            .map(|label| MnistItem {
                image: texture(),
                label,
            })
            .collect();
        let augmenter = Augmenter::new(AugmentConfig::new(), 5).unwrap();
        let resumed = AugmentedDataset::new(InMemDataset::new(items.clone()), augmenter.clone(), 4);
        let dataset = AugmentedDataset::new(InMemDataset::new(items), augmenter.clone(), 0);
        assert_eq!(dataset.len(), 3);
        let epoch0 = dataset.get(2).unwrap();
        let epoch1 = dataset.get(2).unwrap();
        assert_eq!((epoch0.label, epoch1.label), (2, 2));
        assert_eq!(epoch0.image, augmenter.augment(&texture(), 2, 0));
        assert_eq!(epoch1.image, augmenter.augment(&texture(), 2, 1));
        assert_eq!(
            resumed.get(2).unwrap().image,
            augmenter.augment(&texture(), 2, 4)
        );
        assert!(dataset.get(3).is_none());
    }

    #[test]
    fn a_bad_bound_is_an_error_naming_it() {
        let cases = [
            (
                AugmentConfig::new().with_rotation(181.0),
                "rotation must be 0 to 180",
            ),
            (
                AugmentConfig::new().with_rotation(-5.0),
                "rotation must be 0 to 180",
            ),
            (
                AugmentConfig::new().with_scale_min(-0.5),
                "scale_min must be above 0",
            ),
            (
                AugmentConfig::new().with_scale_min(1.2).with_scale_max(1.1),
                "scale_max must be at least scale_min",
            ),
            (
                AugmentConfig::new().with_shear(90.0),
                "shear must be 0 to less than 90",
            ),
            (
                AugmentConfig::new().with_translation(28.0),
                "translation must be 0 to",
            ),
            (
                AugmentConfig::new().with_elastic_alpha(-1.0),
                "elastic_alpha must be 0 or more",
            ),
            (
                AugmentConfig::new().with_elastic_sigma(0.0),
                "elastic_sigma must be above 0",
            ),
            (
                AugmentConfig::new().with_translation(f64::NAN),
                "translation must be a finite",
            ),
        ];
        for (config, expected) in cases {
            let message = Augmenter::new(config, 0).unwrap_err().to_string();
            assert!(message.starts_with("augmentation: "), "{message}");
            assert!(message.contains(expected), "{message}");
        }
    }
}
