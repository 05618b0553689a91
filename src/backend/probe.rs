//! Finds the devices a backend can run on, without letting Burn touch a device first: Burn's GPU
//! runtimes panic (on a background thread, where the caller cannot catch it) when there is no
//! driver, so digitnet asks the driver itself and turns "nothing there" into a clear error.

use std::fmt;

use super::{BackendError, BackendKind};

/// What kind of device a backend found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceClass {
    /// The host CPU (flex, ndarray).
    Cpu,
    /// A discrete GPU.
    DiscreteGpu,
    /// A GPU integrated with the CPU.
    IntegratedGpu,
    /// A virtualised GPU.
    VirtualGpu,
    /// A software renderer running on the CPU (e.g. Mesa's lavapipe Vulkan driver).
    SoftwareGpu,
}

impl DeviceClass {
    /// Whether this is real GPU hardware (not the CPU, not a software renderer).
    pub fn is_hardware_gpu(self) -> bool {
        matches!(
            self,
            DeviceClass::DiscreteGpu | DeviceClass::IntegratedGpu | DeviceClass::VirtualGpu
        )
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceClass::Cpu => "cpu",
            DeviceClass::DiscreteGpu => "discrete GPU",
            DeviceClass::IntegratedGpu => "integrated GPU",
            DeviceClass::VirtualGpu => "virtual GPU",
            DeviceClass::SoftwareGpu => "software GPU (runs on the CPU)",
        })
    }
}

/// One device a backend can run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// What kind of device it is.
    pub class: DeviceClass,
    /// Its index among the devices of its class (what Burn's device constructors take).
    pub index: usize,
    /// Its name as the driver reports it.
    pub name: String,
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.class, self.index, self.name)
    }
}

/// The devices `kind` can run on, best first; an error naming what is missing when there are none.
pub fn devices(kind: BackendKind) -> Result<Vec<DeviceInfo>, BackendError> {
    if !kind.is_compiled() {
        return Err(BackendError::not_compiled(kind.name()));
    }
    match kind {
        BackendKind::Flex | BackendKind::NdArray => Ok(vec![DeviceInfo {
            class: DeviceClass::Cpu,
            index: 0,
            name: format!(
                "{} threads",
                std::thread::available_parallelism().map_or(1, |n| n.get())
            ),
        }]),
        BackendKind::Wgpu => wgpu_devices(),
        BackendKind::Cuda => cuda_devices(),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_devices() -> Result<Vec<DeviceInfo>, BackendError> {
    use std::collections::HashSet;
    // The graphics APIs Burn's wgpu runtime uses (not OpenGL).
    let backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let mut seen = HashSet::new();
    let mut found: Vec<DeviceInfo> = Vec::new();
    for adapter in adapters {
        let info = adapter.get_info();
        // One GPU can be reachable through two APIs (Vulkan and DX12 on Windows): list it once.
        if !seen.insert((info.vendor, info.device, info.name.clone())) {
            continue;
        }
        let class = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => DeviceClass::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu => DeviceClass::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu => DeviceClass::VirtualGpu,
            wgpu::DeviceType::Cpu | wgpu::DeviceType::Other => DeviceClass::SoftwareGpu,
        };
        let index = found.iter().filter(|d| d.class == class).count();
        found.push(DeviceInfo {
            class,
            index,
            name: format!("{} ({:?}, {})", info.name, info.backend, info.driver),
        });
    }
    found.sort_by_key(|d| match d.class {
        DeviceClass::DiscreteGpu => 0,
        DeviceClass::IntegratedGpu => 1,
        DeviceClass::VirtualGpu => 2,
        _ => 3,
    });
    if found.is_empty() {
        return Err(BackendError::no_device(
            "wgpu",
            "no GPU adapter found: no Vulkan, Metal or DX12 driver is installed or it sees no \
             device (on Debian/Ubuntu, `apt install mesa-vulkan-drivers` adds a software Vulkan \
             driver that runs on the CPU)",
        ));
    }
    Ok(found)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_devices() -> Result<Vec<DeviceInfo>, BackendError> {
    Err(BackendError::not_compiled("wgpu"))
}

#[cfg(feature = "cuda")]
fn cuda_devices() -> Result<Vec<DeviceInfo>, BackendError> {
    use cudarc::driver::result;
    // cudarc loads libcuda on first use and panics when it is missing: ask on a thread of our own,
    // where the panic can be caught, and keep its message off the terminal.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::thread::spawn(|| -> Result<Vec<String>, String> {
        result::init().map_err(|e| format!("cuInit failed: {e}"))?;
        let count = result::device::get_count().map_err(|e| e.to_string())?;
        (0..count)
            .map(|i| {
                let device = result::device::get(i).map_err(|e| e.to_string())?;
                result::device::get_name(device).map_err(|e| e.to_string())
            })
            .collect()
    })
    .join();
    std::panic::set_hook(previous_hook);
    let names = match probe {
        Ok(Ok(names)) => names,
        Ok(Err(reason)) => {
            return Err(BackendError::no_device(
                "cuda",
                &format!("the CUDA driver reports an error: {reason}"),
            ));
        }
        Err(_) => {
            return Err(BackendError::no_device(
                "cuda",
                "the NVIDIA CUDA driver (libcuda.so / nvcuda.dll) is not installed",
            ));
        }
    };
    if names.is_empty() {
        return Err(BackendError::no_device(
            "cuda",
            "the CUDA driver is installed but sees no GPU",
        ));
    }
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(index, name)| DeviceInfo {
            class: DeviceClass::DiscreteGpu,
            index,
            name,
        })
        .collect())
}

#[cfg(not(feature = "cuda"))]
fn cuda_devices() -> Result<Vec<DeviceInfo>, BackendError> {
    Err(BackendError::not_compiled("cuda"))
}
