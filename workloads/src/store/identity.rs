//! Which file or device a store's checksums are of.

use std::io;
use std::path::Path;

/// Which file or device a store's checksums are of.
///
/// A block device: what sysfs says identifies it ([`crate::device::block_identity`]:
/// a loop device's backing file, a disk's wwid or serial, else its device number; always
/// its size).
///
/// A regular file: its inode number and, where the filesystem keeps one, its creation
/// time. The store sits beside the file (same directory, same filesystem), so a file
/// replaced by another (`mv other data`, or deleted and made again, even where the inode
/// number is reused) is told apart, and its old checksums are not used to call its
/// sectors corrupt. The device number is left out: btrfs's and a renumbered disk's change
/// across mounts and reboots while the file stays the same. Not caught: new contents
/// written into the same file (`cp other data` truncates and rewrites in place) — that
/// is what verification reports as mismatches. Copying a file and its store elsewhere
/// (`cp -a`) makes a new file: it is laid out again, not trusted.
///
/// Why an identity: the store of a block device is found by the device's name alone,
/// and a name is not a device: `/dev/loop0` detached and attached to another file, or
/// another disk enumerated as `nvme0n1`, would have its data verified against the old
/// device's checksums and be reported as thousands of corrupt sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    device: bool,
    text: String,
}

impl Identity {
    /// The identity of the file or block device at `data` (symlinks followed).
    pub fn of(data: &Path) -> io::Result<Identity> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::metadata(data)?;
        if meta.file_type().is_block_device() {
            return Ok(Identity {
                device: true,
                text: crate::device::block_identity(data, meta.rdev()),
            });
        }
        let mut text = format!("inode={}", meta.ino());
        if let Ok(born) = meta.created() {
            if let Ok(t) = born.duration_since(std::time::UNIX_EPOCH) {
                text += &format!(" created={}.{:09}", t.as_secs(), t.subsec_nanos());
            }
        }
        Ok(Identity {
            device: false,
            text,
        })
    }

    /// "device" or "file", for messages.
    pub fn what(&self) -> &'static str {
        if self.device {
            "device"
        } else {
            "file"
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}
