//! Facts about the storage behind a path, for the results manifest: which block device,
//! what kind, how it is queued, and which filesystem. Everything comes from sysfs and
//! /proc/self/mountinfo; anything that cannot be found is `None`, never an error.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    /// The path described.
    pub path: PathBuf,
    /// The whole disk holding the data, as named in /sys/block (e.g. `nvme0n1`).
    pub disk: Option<String>,
    /// The partition holding the data, if it is on one (e.g. `nvme0n1p2`).
    pub partition: Option<String>,
    /// `MAJ:MIN` of the device holding the data (the partition's, if any).
    pub devno: Option<String>,
    /// Size in bytes of the device holding the data (the partition's, if any).
    pub size_bytes: Option<u64>,
    pub model: Option<String>,
    pub rotational: Option<bool>,
    pub logical_block_size: Option<u64>,
    pub physical_block_size: Option<u64>,
    /// The active I/O scheduler (`none`, `mq-deadline`, ...).
    pub scheduler: Option<String>,
    /// Filesystem type of the mount holding the path, as the kernel names it (`ext4`,
    /// `btrfs`, `overlay`, ...); `None` for a block device, which is used raw.
    pub fs_type: Option<String>,
    pub mount_point: Option<PathBuf>,
    /// What is mounted: a device path for disk filesystems, a name for the others.
    pub mount_source: Option<String>,
    /// Per-mount options (`rw,noatime`).
    pub mount_options: Option<String>,
    /// Filesystem options (for btrfs, e.g. `compress`, `nodatasum`, which change the work).
    pub fs_options: Option<String>,
    pub is_loop: bool,
    /// For a loop device, the file behind it.
    pub loop_backing_file: Option<PathBuf>,
}

/// Describes the storage behind `path` (a file, a directory, a block device, or a path not
/// created yet, which is described by its nearest existing parent). Never fails.
pub fn describe(path: &Path) -> DeviceInfo {
    let mut info = DeviceInfo {
        path: path.to_path_buf(),
        ..DeviceInfo::default()
    };
    let Some(existing) = path
        .ancestors()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .find(|p| p.exists())
    else {
        return info;
    };
    let (Ok(real), Ok(meta)) = (fs::canonicalize(existing), fs::metadata(existing)) else {
        return info;
    };
    let sys = if meta.file_type().is_block_device() {
        sys_dir(meta.rdev())
    } else {
        let mount = fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .and_then(|text| mount_for(&text, &real));
        let mut sys = sys_dir(meta.dev());
        if let Some(m) = mount {
            // btrfs, overlayfs and tmpfs give files an anonymous device (major 0), which
            // sysfs does not know: the mount's source names the real one, if there is one.
            if sys.is_none() {
                sys = fs::metadata(&m.source)
                    .ok()
                    .filter(|s| s.file_type().is_block_device())
                    .and_then(|s| sys_dir(s.rdev()));
            }
            info.fs_type = Some(m.fs_type);
            info.mount_point = Some(m.point);
            info.mount_source = Some(m.source);
            info.mount_options = Some(m.options);
            info.fs_options = Some(m.fs_options);
        }
        sys
    };
    if let Some((dev_dir, devno)) = sys {
        fill_block(&mut info, &dev_dir, devno);
    }
    info
}

/// Writes back dirty pages and drops the page cache, dentries and inodes, so that a read
/// job reads the device. Needs root; the error says so.
pub fn drop_caches() -> io::Result<()> {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    fs::write("/proc/sys/vm/drop_caches", "3").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot drop the page cache (/proc/sys/vm/drop_caches): {e}; it needs root"),
        )
    })
}

/// Who is using a block device, or any partition of it: where it is mounted and which
/// devices (dm, md, loop) hold it. Empty when nobody is, or sysfs cannot say.
pub fn users(rdev: u64) -> Vec<String> {
    let Some((dir, _)) = sys_dir(rdev) else {
        return Vec::new();
    };
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // The device itself and every partition directory inside it.
    let mut devs = vec![dir.clone()];
    if let Ok(entries) = fs::read_dir(&dir) {
        devs.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join("partition").exists()),
        );
    }
    let mut users = Vec::new();
    for dev in devs {
        let name = name_of(&dev).unwrap_or_default();
        if let Some(devno) = read_trimmed(&dev.join("dev")) {
            for point in mount_points(&mountinfo, &devno) {
                users.push(format!("{name} is mounted at {}", point.display()));
            }
        }
        if let Ok(holders) = fs::read_dir(dev.join("holders")) {
            for h in holders.flatten() {
                users.push(format!(
                    "{name} is held by {}",
                    h.file_name().to_string_lossy()
                ));
            }
        }
    }
    users
}

/// Where the device `devno` (MAJ:MIN) is mounted, from /proc/self/mountinfo.
fn mount_points(mountinfo: &str, devno: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let pre: Vec<&str> = line.split_once(" - ")?.0.split(' ').collect();
            (pre.len() >= 5 && pre[2] == devno)
                .then(|| PathBuf::from(OsStr::from_bytes(&unescape(pre[4]))))
        })
        .collect()
}

/// The sysfs directory of a block device number, if sysfs knows it.
fn sys_dir(dev: u64) -> Option<(PathBuf, String)> {
    let devno = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let dir = fs::canonicalize(format!("/sys/dev/block/{devno}")).ok()?;
    Some((dir, devno))
}

fn read_trimmed(path: &Path) -> Option<String> {
    let s = fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn read_num(path: &Path) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

fn name_of(dir: &Path) -> Option<String> {
    dir.file_name().map(|n| n.to_string_lossy().into_owned())
}

fn fill_block(info: &mut DeviceInfo, dev_dir: &Path, devno: String) {
    // A partition's directory sits inside its disk's and has a `partition` file.
    let disk_dir = if dev_dir.join("partition").exists() {
        info.partition = name_of(dev_dir);
        dev_dir.parent().unwrap_or(dev_dir)
    } else {
        dev_dir
    };
    info.devno = Some(devno);
    info.disk = name_of(disk_dir);
    // sysfs counts 512-byte sectors whatever the device's block size.
    info.size_bytes = read_num(&dev_dir.join("size")).map(|s| s * 512);
    info.model = read_trimmed(&disk_dir.join("device/model"));
    let queue = disk_dir.join("queue");
    info.rotational = read_num(&queue.join("rotational")).map(|r| r != 0);
    info.logical_block_size = read_num(&queue.join("logical_block_size"));
    info.physical_block_size = read_num(&queue.join("physical_block_size"));
    info.scheduler = read_trimmed(&queue.join("scheduler")).and_then(|s| active_scheduler(&s));
    info.is_loop = disk_dir.join("loop").is_dir()
        || info.disk.as_deref().is_some_and(|d| d.starts_with("loop"));
    if info.is_loop {
        info.loop_backing_file =
            read_trimmed(&disk_dir.join("loop/backing_file")).map(PathBuf::from);
    }
}

/// What tells the block device `dev` (device number `rdev`) from another that later takes
/// its name (a loop device re-attached to another file, another disk enumerated as
/// `nvme0n1`), from sysfs: for a loop device, the file behind it (path, and the
/// filesystem and inode it is on) and the offset into it; for a disk, the first of its
/// wwid, dm or md uuid, or serial; failing those, its device number; for a partition,
/// also its number and first sector; always its size. One line of `key=value` words,
/// without commas, compared as a whole. The kernel's name is left out: the same disk may
/// be `nvme1n1` after a reboot (and the checksum store is found by the name used anyway).
pub fn block_identity(dev: &Path, rdev: u64) -> String {
    let devno = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
    let mut words = Vec::new();
    let size = match sys_dir(rdev) {
        None => {
            words.push(format!("devno={devno} (not in sysfs)"));
            // Seeking to the end of a block device gives its size.
            fs::File::open(dev).and_then(|mut f| io::Seek::seek(&mut f, io::SeekFrom::End(0)))
        }
        Some((dir, _)) => {
            let part = dir.join("partition").exists();
            let disk = if part {
                dir.parent().unwrap_or(&dir)
            } else {
                &dir
            };
            if disk.join("loop").is_dir() {
                // Gone when the device is detached; " (deleted)" after a removed file.
                let backing = read_trimmed(&disk.join("loop/backing_file"));
                words.push(format!(
                    "loop backing_file={}",
                    backing.as_deref().unwrap_or("none")
                ));
                if let Some(m) = backing.and_then(|b| fs::metadata(b).ok()) {
                    let on = format!("{}:{}", libc::major(m.dev()), libc::minor(m.dev()));
                    words.push(format!("backing_inode={on}/{}", m.ino()));
                }
                let offset = read_num(&disk.join("loop/offset")).unwrap_or(0);
                words.push(format!("offset={offset}"));
            } else {
                let id = [
                    "wwid",
                    "device/wwid",
                    "dm/uuid",
                    "md/uuid",
                    "serial",
                    "device/serial",
                ]
                .iter()
                .find_map(|f| {
                    let v = read_trimmed(&disk.join(f))?;
                    Some(format!("{}={}", f.rsplit('/').next().unwrap_or(f), v))
                });
                words.push(id.unwrap_or_else(|| format!("devno={devno}")));
            }
            if part {
                let n = read_trimmed(&dir.join("partition"));
                let start = read_trimmed(&dir.join("start"));
                words.push(format!(
                    "partition={} start={}",
                    n.as_deref().unwrap_or("?"),
                    start.as_deref().unwrap_or("?")
                ));
            }
            // sysfs counts 512-byte sectors whatever the device's block size.
            read_num(&dir.join("size"))
                .map(|s| s * 512)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        }
    };
    words.push(match size {
        Ok(bytes) => format!("size={}", crate::units::format_size(bytes)),
        Err(_) => "size=unknown".into(),
    });
    // A serial may hold anything; keep the line one line, comma-free.
    words.join(" ").replace([',', '\n'], " ")
}

/// The `[bracketed]` entry of a scheduler list; a lone entry (`none`) is the active one.
fn active_scheduler(list: &str) -> Option<String> {
    if let Some(b) = list.split_whitespace().find(|w| w.starts_with('[')) {
        return Some(b.trim_matches(|c| c == '[' || c == ']').to_string());
    }
    let mut words = list.split_whitespace();
    match (words.next(), words.next()) {
        (Some(only), None) => Some(only.to_string()),
        _ => None,
    }
}

#[derive(Debug, PartialEq)]
struct Mount {
    point: PathBuf,
    fs_type: String,
    source: String,
    options: String,
    fs_options: String,
}

/// The mount holding `path` (absolute, symlinks resolved): the longest mount point that
/// contains it, the last listed among equals (it is mounted over the others).
fn mount_for(mountinfo: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE FS_OPTIONS
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 6 || post.len() < 3 {
            continue;
        }
        let point = PathBuf::from(OsStr::from_bytes(&unescape(pre[4])));
        let longer = best
            .as_ref()
            .is_none_or(|b| point.components().count() >= b.point.components().count());
        if path.starts_with(&point) && longer {
            best = Some(Mount {
                point,
                fs_type: post[0].to_string(),
                source: String::from_utf8_lossy(&unescape(post[1])).into_owned(),
                options: pre[5].to_string(),
                fs_options: post[2].to_string(),
            });
        }
    }
    best
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
40 27 0:40 / /mnt/data rw,noatime shared:7 - btrfs /dev/nvme0n1p2 rw,ssd,compress=zstd:1
41 40 0:41 / /mnt/data/my\\040dir rw - tmpfs tmpfs rw,size=4k
42 27 0:42 / /mnt/data rw,noatime - xfs /dev/sdb1 rw,attr2
";

    #[test]
    fn mountinfo_picks_the_innermost_latest_mount() {
        let m = |p: &str| mount_for(MOUNTINFO, Path::new(p)).unwrap();
        assert_eq!(m("/home/x").fs_type, "ext4");
        assert_eq!(m("/proc/self").fs_type, "proc");
        // /mnt/data is mounted twice: the later mount hides the earlier.
        let data = m("/mnt/data/f");
        assert_eq!(
            (data.fs_type.as_str(), data.source.as_str()),
            ("xfs", "/dev/sdb1")
        );
        assert_eq!(data.options, "rw,noatime");
        let spaced = m("/mnt/data/my dir/f");
        assert_eq!(spaced.fs_type, "tmpfs");
        assert_eq!(spaced.point, Path::new("/mnt/data/my dir"));
        assert_eq!(
            m("/mnt/datax").fs_type,
            "ext4",
            "prefixes match whole components"
        );
        assert_eq!(
            mount_for(&MOUNTINFO[..200], Path::new("/mnt/data"))
                .unwrap()
                .fs_options,
            "rw,ssd,compress=zstd:1"
        );
    }

    #[test]
    fn mount_points_are_found_by_device_number() {
        let mi = "36 35 98:0 / /mnt1 rw,noatime - ext3 /dev/root rw\n\
                  37 35 7:0 / /mnt/with\\040space rw - ext4 /dev/loop0 rw\n\
                  38 35 7:0 /sub /other rw - ext4 /dev/loop0 rw\n";
        assert_eq!(
            mount_points(mi, "7:0"),
            [PathBuf::from("/mnt/with space"), PathBuf::from("/other")]
        );
        assert!(mount_points(mi, "7:1").is_empty());
    }

    #[test]
    fn scheduler_is_the_bracketed_one() {
        assert_eq!(
            active_scheduler("none [mq-deadline] kyber bfq").as_deref(),
            Some("mq-deadline")
        );
        assert_eq!(
            active_scheduler("[none] mq-deadline").as_deref(),
            Some("none")
        );
        assert_eq!(active_scheduler("none").as_deref(), Some("none"));
        assert_eq!(active_scheduler("a b"), None);
    }

    /// The filesystem type of `path` as the system's tools name it: findmnt reads
    /// mountinfo; `stat -f` names statfs's magic number (`ext2/ext3` for every ext).
    fn fs_type_by_tools(path: &Path) -> Option<Vec<String>> {
        // findmnt lists every mount stacked on the target; the last is the visible one.
        let run = |cmd: &mut Command| {
            let out = cmd.arg(path).output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let t = text.lines().last()?.trim().to_string();
            (out.status.success() && !t.is_empty()).then_some(t)
        };
        if let Some(t) = run(Command::new("findmnt").args(["-n", "-o", "FSTYPE", "--target"])) {
            return Some(vec![t]);
        }
        let t = run(Command::new("stat").args(["-f", "-c", "%T"]))?;
        Some(match t.as_str() {
            "ext2/ext3" => vec!["ext2".into(), "ext3".into(), "ext4".into()],
            "overlayfs" => vec!["overlay".into()],
            _ => vec![t],
        })
    }

    #[test]
    fn a_temp_file_is_on_the_filesystem_the_tools_report() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        fs::write(&file, b"x").unwrap();
        let info = describe(&file);
        assert_eq!(info.path, file);
        assert!(info.mount_point.is_some());
        match fs_type_by_tools(&file) {
            Some(names) => {
                let ours = info.fs_type.clone().unwrap_or_default();
                assert!(
                    names.contains(&ours),
                    "tools say {names:?}, describe says {ours}"
                );
            }
            None => eprintln!("skipping the type comparison: neither findmnt nor stat -f ran"),
        }
        for bs in [info.logical_block_size, info.physical_block_size]
            .into_iter()
            .flatten()
        {
            assert!(bs.is_power_of_two() && bs >= 512, "block size {bs}");
        }
        // A file not created yet is described by its directory.
        let later = describe(&dir.path().join("not/yet"));
        assert_eq!(later.fs_type, info.fs_type);
        assert_eq!(later.devno, info.devno);
    }

    #[test]
    fn tmpfs_has_no_block_device() {
        let shm = Path::new("/dev/shm");
        if fs_type_by_tools(shm).is_none_or(|t| t != ["tmpfs"]) {
            eprintln!("skipping: /dev/shm is not a tmpfs here");
            return;
        }
        let info = describe(shm);
        assert_eq!(info.fs_type.as_deref(), Some("tmpfs"));
        assert_eq!((info.disk, info.rotational), (None, None));
    }

    #[test]
    fn a_block_device_is_described_raw() {
        let Some((name, dev)) = fs::read_dir("/sys/block").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .map(|n| (n.clone(), PathBuf::from(format!("/dev/{n}"))))
                .find(|(_, p)| fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device()))
        }) else {
            eprintln!("skipping: no block device visible under /dev");
            return;
        };
        let info = describe(&dev);
        assert_eq!(info.disk.as_deref(), Some(name.as_str()));
        assert_eq!(info.partition, None);
        assert_eq!(info.fs_type, None, "a raw device has no filesystem");
        assert_eq!(info.is_loop, name.starts_with("loop"));
        assert!(info.devno.is_some());
        if let Some(lbs) = info.logical_block_size {
            assert!(lbs.is_power_of_two(), "{name}: logical block size {lbs}");
        }
    }

    #[test]
    fn nothing_is_known_about_nothing() {
        let info = describe(Path::new("/proc/self/definitely/not/here"));
        assert_eq!(info.fs_type.as_deref(), Some("proc"));
        assert_eq!(info.disk, None);
    }

    #[test]
    fn dropping_caches_needs_root() {
        // Never actually drop the caches of a shared build machine from a unit test.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("skipping: running as root, and dropping caches would slow the machine");
            return;
        }
        let e = drop_caches().unwrap_err().to_string();
        assert!(e.contains("drop_caches"), "{e}");
    }
}
