//! What csumbench knows of fio's own options that its option table does not take: the ones
//! that only shape fio's report (accepted, with one warning), and every other fio option,
//! each with why csumbench does not do it and what to use instead. The names are fio 3.42's
//! (`options.c`, and `engines/*.c` for the engines' options), so a job file's error can
//! tell "a fio option csumbench does not implement" from "not a fio option", and offer the
//! nearest name when it is neither. fio's profiles' options (profiles/*.c) are here too: fio
//! takes them in any job.

/// fio options that change only what fio prints or logs, never the I/O: a job file may
/// give them, and hears once that they have no effect.
pub static REPORTING: &[&str] = &[
    "block_error_percentiles",
    "bwavgtime",
    "clat_percentiles",
    "clocksource",
    "disable_bw",
    "disable_bw_measurement",
    "disable_clat",
    "disable_lat",
    "disable_slat",
    "disk_util",
    "group_reporting",
    "gtod_cpu",
    "gtod_reduce",
    "iopsavgtime",
    "job_start_clock_id",
    "lat_percentiles",
    "log_alternate_epoch",
    "log_alternate_epoch_clock_id",
    "log_compression",
    "log_compression_cpus",
    "log_entries",
    "log_hist_coarseness",
    "log_hist_msec",
    "log_issue_time",
    "log_max_value",
    "log_prio",
    "log_store_compressed",
    "log_unix_epoch",
    "log_window_value",
    "new_group",
    "percentile_list",
    "significant_figures",
    "slat_percentiles",
    "stats",
    "unified_rw_reporting",
    "unit_base",
    "write_hist_log",
];

/// The options of fio's act and tiobench profiles (`profiles/*.c`): fio takes them in any
/// job, and without `profile=` they change nothing (`threads=1` there is not `thread`).
pub static PROFILE: &[&str] = &[
    "block",
    "device-names",
    "dir",
    "large-block-op-kbytes",
    "load",
    "numruns",
    "prep",
    "read-req-num-512-blocks",
    "test-duration",
    "threads",
    "threads-per-queue",
];

/// fio options csumbench turns down, for one reason.
pub struct Refused {
    /// Why csumbench does not do what they ask.
    pub why: &'static str,
    /// What to do instead.
    pub instead: &'static str,
    pub names: &'static [&'static str],
}

/// Every other fio job option, by reason.
pub static REFUSED: &[Refused] = &[
    Refused {
        why: "csumbench issues no trims",
        instead: "leave it out",
        names: &[
            "trim_backlog",
            "trim_backlog_batch",
            "trim_percentage",
            "trim_verify_zero",
        ],
    },
    Refused {
        why: "csumbench drives neither zoned block devices (zonemode=zbd) nor fio's strided \
              zones",
        instead: "use offset and size for the region to test",
        names: &[
            "ignore_zone_limits",
            "job_max_open_zones",
            "max_open_zones",
            "read_beyond_wp",
            "recover_zbd_write_error",
            "write_zone_remainder",
            "zone_reset_frequency",
            "zone_reset_threshold",
            "zonecapacity",
            "zonemode",
            "zonerange",
            "zonesize",
            "zoneskip",
        ],
    },
    Refused {
        why: "csumbench writes its own seeded pseudo-random data, fresh for every write, so \
              each sector's checksum is known",
        instead: "leave it out",
        names: &[
            "buffer_compress_chunk",
            "buffer_compress_percentage",
            "buffer_pattern",
            "dedupe_global",
            "dedupe_mode",
            "dedupe_percentage",
            "dedupe_working_set_percentage",
            "zero_buffers",
        ],
    },
    Refused {
        why: "csumbench verifies every 4 KiB sector against its checksum store, not fio's \
              per-block headers and patterns",
        instead: "verify= names the checksum; leave the rest out",
        names: &[
            "experimental_verify",
            "verify_async_cpus",
            "verify_backlog_batch",
            "verify_dump",
            "verify_fatal",
            "verify_header_seed",
            "verify_interval",
            "verify_offset",
            "verify_pattern",
            "verify_pattern_interval",
            "verify_policy",
            "verify_state_load",
            "verify_state_save",
            "verify_write_sequence",
            "verifysort",
            "verifysort_nr",
        ],
    },
    Refused {
        why: "of fio's ways to flush writes, csumbench has fsync alone",
        instead: "use fsync=N or end_fsync=1",
        names: &[
            "create_fsync",
            "end_syncfs",
            "fdatasync",
            "fsync_on_close",
            "sync",
            "sync_file_range",
            "write_barrier",
        ],
    },
    Refused {
        why: "csumbench creates, lays out and opens a job's file its own way (the README's \
              Safety notes)",
        instead: "leave it out",
        names: &[
            "allow_file_create",
            "allow_mounted_write",
            "create_only",
            "create_serialize",
            "fadvise_hint",
            "fallocate",
            "file_append",
            "filetype",
            "fill_device",
            "fill_fs",
            "lockfile",
            "opendir",
            "openfiles",
            "overwrite",
            "pre_read",
            "unique_filename",
            "unlink_each_loop",
        ],
    },
    Refused {
        why: "every I/O covers whole 4 KiB checksum sectors",
        instead: "use block sizes that are multiples of 4k",
        names: &["blocksize_unaligned", "bs_unaligned"],
    },
    Refused {
        why: "not implemented in csumbench's I/O pattern",
        instead: "leave it out",
        names: &[
            "atomic",
            "bs_is_seq_rand",
            "num_range",
            "offset_align",
            "ramp_size",
            "random_sequence_stride",
            "rwmixcycle",
            "spr_cs",
            "spr_num_regions",
            "spr_op",
            "sprandom",
            "write_hint",
        ],
    },
    Refused {
        why: "not implemented in csumbench's pacing",
        instead: "use rate, rate_iops, thinktime, thinktime_blocks and thinktime_spin",
        names: &[
            "flow_watermark",
            "rate_cycle",
            "rate_ignore_thinktime",
            "rate_iops_min",
            "ratecycle",
            "thinkcycles",
            "thinktime_iotime",
        ],
    },
    Refused {
        why: "csumbench runs every job as a thread of one process, with its own aligned \
              buffers, at the machine's own priorities",
        instead: "use cpus_allowed to place the job's threads",
        names: &[
            "cgroup",
            "cgroup_nodelete",
            "cgroup_weight",
            "comm",
            "cpus_allowed_policy",
            "exec_postrun",
            "exec_prerun",
            "gid",
            "gpu_dev_id",
            "hugepage-size",
            "io_submit_mode",
            "iomem",
            "iomem_align",
            "ioscheduler",
            "lockmem",
            "mem",
            "mem_align",
            "nice",
            "numa_cpu_nodes",
            "numa_mem_policy",
            "prio",
            "prioclass",
            "priohint",
            "uid",
        ],
    },
    Refused {
        why: "csumbench ends a case at its first I/O error and reports it",
        instead: "leave it out",
        names: &[
            "continue_on_error",
            "error_dump",
            "exit_what",
            "exitall_on_error",
            "ignore_error",
        ],
    },
    Refused {
        why: "replaying and writing fio's I/O logs are not implemented",
        instead: "describe the workload with rw, bs and size",
        names: &[
            "merge_blktrace_file",
            "merge_blktrace_iters",
            "merge_blktrace_scalars",
            "read_iolog",
            "read_iolog_chunked",
            "replay_align",
            "replay_no_stall",
            "replay_redirect",
            "replay_scale",
            "replay_skip",
            "replay_time_scale",
            "write_iolog",
        ],
    },
    Refused {
        why: "fio's latency targets and profiles are not implemented",
        instead: "use runtime, or steadystate to end a job once it settles",
        names: &[
            "latency_percentile",
            "latency_run",
            "latency_target",
            "latency_window",
            "max_latency",
            "profile",
        ],
    },
    Refused {
        why: "NVMe flexible data placement is not implemented",
        instead: "leave it out",
        names: &[
            "data_placement",
            "dataplacement",
            "dp_scheme",
            "fdp",
            "fdp_pli",
            "fdp_pli_select",
            "plid_select",
            "plids",
        ],
    },
];

/// The options of fio's engines, by engine (fio's `ioengine=` name). Those csumbench's own
/// engines take are in its option table; the rest of io_uring's, libaio's and the sync
/// engines' are ones those engines do not implement.
pub static ENGINE_OPTIONS: &[(&str, &[&str])] = &[
    (
        "io_uring",
        &[
            "apptag",
            "apptag_mask",
            "cdb_len",
            "cmd_type",
            "deac",
            "force_async",
            "md_per_io_size",
            "nowait",
            "pi_act",
            "pi_chk",
            "read_mode",
            "readfua",
            "uncached",
            "verify_bytchk",
            "verify_mode",
            "write_mode",
            "writefua",
        ],
    ),
    ("pvsync2", &["hipri_percentage"]),
    (
        "cpuio",
        &["cpuchunks", "cpuload", "cpumode", "exit_on_io_done"],
    ),
    (
        "dfs",
        &["chunk_size", "cont", "object_class", "pool", "svcl"],
    ),
    ("e4defrag", &["donorname", "inplace"]),
    (
        "exec",
        &["arguments", "grace_time", "program", "std_redirect"],
    ),
    ("filestat", &["stat_type"]),
    ("gfapi", &["brick", "single-instance", "volume"]),
    (
        "http",
        &[
            "http_host",
            "http_mode",
            "http_object_mode",
            "http_pass",
            "http_s3_key",
            "http_s3_keyid",
            "http_s3_region",
            "http_s3_security_token",
            "http_s3_sse_customer_algorithm",
            "http_s3_sse_customer_key",
            "http_s3_storage_class",
            "http_swift_auth_token",
            "http_user",
            "http_verbose",
            "https",
        ],
    ),
    (
        "libblkio",
        &[
            "libblkio_driver",
            "libblkio_force_enable_completion_eventfd",
            "libblkio_num_entries",
            "libblkio_path",
            "libblkio_pre_connect_props",
            "libblkio_pre_start_props",
            "libblkio_queue_size",
            "libblkio_vectored",
            "libblkio_wait_mode",
            "libblkio_write_zeroes_on_trim",
        ],
    ),
    ("libcufile", &["cuda_io", "gpu_dev_ids"]),
    (
        "libhdfs",
        &[
            "chunck_size",
            "hdfs_use_direct",
            "hdfsdirectory",
            "namenode",
            "single_instance",
        ],
    ),
    ("libhipfile", &["rocm_io"]),
    ("libiscsi", &["initiator"]),
    ("mmap", &["thp"]),
    ("mtd", &["skip_bad"]),
    ("nbd", &["uri"]),
    (
        "net",
        &[
            "hostname",
            "interface",
            "listen",
            "mss",
            "nodelay",
            "pingpong",
            "port",
            "proto",
            "protocol",
            "ttl",
            "window_size",
        ],
    ),
    ("nfs", &["nfs_url"]),
    (
        "rados",
        &[
            "busy_poll",
            "clientname",
            "clustername",
            "conf",
            "touch_objects",
        ],
    ),
    (
        "rbd",
        &[
            "rbd_encryption_format",
            "rbd_encryption_passphrase",
            "rbdname",
        ],
    ),
    ("rdma", &["bindname", "verb"]),
    ("sg", &["sg_write_mode", "stream_id"]),
    ("windowsaio", &["no_completion_thread"]),
    ("external", &["dummy"]),
    (
        "xnvme",
        &[
            "xnvme_admin",
            "xnvme_async",
            "xnvme_be",
            "xnvme_dev_nsid",
            "xnvme_dev_subnqn",
            "xnvme_iovec",
            "xnvme_mem",
            "xnvme_sync",
        ],
    ),
];

/// fio's engines csumbench does not have: each file engine with the nearest of
/// csumbench's, and every other engine (networks, object stores, CPU burners, file
/// operations), which does not reach a file's sectors at all.
pub static FILE_ENGINES: &[(&str, &str)] = &[
    ("posixaio", "libaio or io_uring"),
    ("solarisaio", "libaio or io_uring"),
    ("windowsaio", "libaio or io_uring"),
    ("io_uring_cmd", "io_uring"),
    ("libblkio", "io_uring"),
    ("xnvme", "io_uring"),
    ("pvsync2", "pvsync"),
    ("vsync", "pvsync"),
    ("mmap", "psync"),
    ("splice", "psync"),
    ("sg", "psync on the block device"),
    ("libzbc", "psync on the block device"),
    ("dev-dax", "psync"),
    ("libpmem", "psync"),
    ("ime_psync", "psync"),
    ("ime_psyncv", "pvsync"),
    ("ime_aio", "libaio"),
];

/// fio's engines that do not read or write a file's sectors.
pub static OTHER_ENGINES: &[&str] = &[
    "cpuio",
    "dfs",
    "dircreate",
    "dirdelete",
    "dirstat",
    "e4defrag",
    "exec",
    "external",
    "falloc",
    "filecreate",
    "filedelete",
    "filestat",
    "ftruncate",
    "gfapi",
    "gfapi_async",
    "http",
    "libcufile",
    "libhdfs",
    "libhipfile",
    "libiscsi",
    "mtd",
    "nbd",
    "net",
    "netsplice",
    "nfs",
    "page_fault",
    "rados",
    "rbd",
    "rdma",
];

/// What fio means by an option name csumbench's table does not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// It shapes only fio's report.
    Reporting,
    /// An option of fio's profiles, which without `profile=` changes nothing.
    Profile,
    /// A fio job option csumbench turns down, and why.
    Refused(&'static Refused),
    /// An option of this fio engine.
    EngineOption(&'static str),
}

impl PartialEq for Refused {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Refused {}

impl std::fmt::Debug for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.why)
    }
}

/// What fio means by `name`, when it is one of fio's options this module knows.
pub fn classify(name: &str) -> Option<Known> {
    if REPORTING.contains(&name) {
        return Some(Known::Reporting);
    }
    if PROFILE.contains(&name) {
        return Some(Known::Profile);
    }
    if let Some(r) = REFUSED.iter().find(|r| r.names.contains(&name)) {
        return Some(Known::Refused(r));
    }
    ENGINE_OPTIONS
        .iter()
        .find(|(_, names)| names.contains(&name))
        .map(|(engine, _)| Known::EngineOption(engine))
}

/// Every fio option name this module knows.
pub fn names() -> impl Iterator<Item = &'static str> {
    REPORTING
        .iter()
        .chain(PROFILE)
        .chain(REFUSED.iter().flat_map(|r| r.names))
        .chain(ENGINE_OPTIONS.iter().flat_map(|(_, names)| *names))
        .copied()
}

/// Why `ioengine=name` is not one of csumbench's engines, when fio has it.
pub fn missing_engine(name: &str) -> Option<String> {
    if let Some((_, instead)) = FILE_ENGINES.iter().find(|(e, _)| *e == name) {
        return Some(format!(
            "fio's {name} engine is not one of csumbench's; use {instead}"
        ));
    }
    OTHER_ENGINES.contains(&name).then(|| {
        format!(
            "fio's {name} engine does not read or write a file's sectors, and csumbench \
             measures checksum work on files and block devices; use psync, libaio or io_uring"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_name_has_two_meanings() {
        let mut all: Vec<&str> = names().collect();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "a fio option is listed twice");
    }

    #[test]
    fn names_are_classified_as_listed() {
        assert_eq!(classify("group_reporting"), Some(Known::Reporting));
        assert_eq!(classify("threads"), Some(Known::Profile));
        match classify("verify_pattern") {
            Some(Known::Refused(r)) => assert!(r.why.contains("checksum store")),
            other => panic!("{other:?}"),
        }
        assert_eq!(classify("http_host"), Some(Known::EngineOption("http")));
        assert_eq!(classify("bs"), None, "csumbench's own");
        assert_eq!(classify("nonsense"), None);
    }

    #[test]
    fn engines_say_what_to_use_instead() {
        assert!(missing_engine("posixaio")
            .unwrap()
            .ends_with("use libaio or io_uring"));
        assert!(missing_engine("net")
            .unwrap()
            .contains("does not read or write a file's sectors"));
        assert_eq!(missing_engine("io_uring"), None);
    }
}
