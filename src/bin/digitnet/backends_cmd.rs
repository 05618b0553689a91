//! `digitnet backends`: the Burn backends compiled into this build and the device each uses.

use digitnet::backend::BackendKind;

/// Prints one line per known backend: name, whether compiled in, default device.
pub fn run() -> anyhow::Result<()> {
    let best = BackendKind::best();
    for kind in BackendKind::ALL {
        let status = if kind.is_compiled() {
            let device = match kind {
                BackendKind::Flex | BackendKind::NdArray => "cpu (all cores)",
                BackendKind::Wgpu => "the default GPU adapter (Vulkan, Metal or DX12)",
            };
            let default = if Some(kind) == best {
                ", the default"
            } else {
                ""
            };
            format!("compiled in{default}; device: {device}")
        } else {
            format!("not compiled in (cargo feature `{}`)", kind.name())
        };
        println!("{:<8} {status}", kind.name());
    }
    Ok(())
}
