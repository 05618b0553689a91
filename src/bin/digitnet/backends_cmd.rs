//! `digitnet backends`: the Burn backends compiled into this build and the devices each finds.

use digitnet::backend::{BackendKind, devices};

/// Prints, per known backend, whether it is compiled in, the default, and its devices (or why it
/// has none).
pub fn run() -> anyhow::Result<()> {
    let best = BackendKind::best();
    for kind in BackendKind::ALL {
        if !kind.is_compiled() {
            println!(
                "{:<8} not compiled in (cargo feature `{}`)",
                kind.name(),
                kind.name()
            );
            continue;
        }
        let default = if Some(kind) == best {
            ", the default"
        } else {
            ""
        };
        match devices(kind) {
            Ok(found) => {
                println!("{:<8} compiled in{default}", kind.name());
                for device in found {
                    println!("         device: {device}");
                }
            }
            Err(e) => println!("{:<8} compiled in; no device: {e}", kind.name()),
        }
    }
    Ok(())
}
