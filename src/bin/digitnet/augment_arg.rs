//! `--augment [SPEC]` of `digitnet train` and `digitnet show`: the distortions as
//! comma-separated overrides of the defaults.

use digitnet::data::AugmentConfig;

/// What `--augment` means without a value.
pub const DEFAULTS: &str = "default";

/// Help shared by both commands.
pub const HELP: &str = "Distort the training images, anew every epoch: `--augment` alone for \
    rotation 10 degrees, translation 2 px, scale 0.9-1.1, shear 10 degrees; or overrides, e.g. \
    `--augment rotation=15,scale=0.85:1.15,shear=0,elastic=34:4` (elastic=ALPHA[:SIGMA], off by \
    default). Validation and test images are never distorted.";

/// Parses `default` or `key=value,...` (keys: rotation, translation, scale=MIN:MAX, shear,
/// elastic=ALPHA[:SIGMA] or elastic=off) into a validated config.
pub fn parse(spec: &str) -> Result<AugmentConfig, String> {
    let mut config = AugmentConfig::new();
    for part in spec.split(',').map(str::trim).filter(|p| *p != DEFAULTS) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected key=value ({})", keys()))?;
        config = apply(config, key.trim(), value.trim())?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn keys() -> &'static str {
    "keys: rotation, translation, scale, shear, elastic"
}

fn apply(config: AugmentConfig, key: &str, value: &str) -> Result<AugmentConfig, String> {
    Ok(match key {
        "rotation" => config.with_rotation(number(key, value)?),
        "translation" => config.with_translation(number(key, value)?),
        "shear" => config.with_shear(number(key, value)?),
        "scale" => {
            let (min, max) = pair(key, value)?;
            config
                .with_scale_min(min)
                .with_scale_max(max.unwrap_or(min))
        }
        "elastic" if value == "off" => config.with_elastic_alpha(0.0),
        "elastic" => {
            let (alpha, sigma) = pair(key, value)?;
            let sigma = sigma.unwrap_or(config.elastic_sigma);
            config.with_elastic_alpha(alpha).with_elastic_sigma(sigma)
        }
        _ => return Err(format!("unknown key `{key}` ({})", keys())),
    })
}

fn number(key: &str, value: &str) -> Result<f64, String> {
    value
        .parse()
        .map_err(|_| format!("{key}={value}: `{value}` is not a number"))
}

/// `A` or `A:B`.
fn pair(key: &str, value: &str) -> Result<(f64, Option<f64>), String> {
    match value.split_once(':') {
        Some((a, b)) => Ok((number(key, a)?, Some(number(key, b)?))),
        None => Ok((number(key, value)?, None)),
    }
}
