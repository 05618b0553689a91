//! `digitnet download`: fetch a dataset's four files (verified) ahead of time.

use crate::cli::DownloadArgs;

/// Makes sure every file is present, downloading the missing ones, then verifies them all.
pub fn run(args: &DownloadArgs) -> anyhow::Result<()> {
    let source = args.data.source();
    for file in source.fetch_all()? {
        let how = if file.downloaded {
            "downloaded"
        } else {
            "already present"
        };
        println!("{how}: {}", file.path.display());
    }
    let mnist = args.data.load()?;
    println!(
        "{}: all {} files parse{}",
        mnist.spec().name,
        mnist.files().len(),
        if source.verifies() {
            " and match their published checksums"
        } else {
            " (checksums not enforced)"
        }
    );
    Ok(())
}
