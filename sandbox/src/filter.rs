//! The seccomp filter installed right before the entrypoint's `execve`: a deny-list of
//! the escape routes (kernel modules, kexec, bpf, keyrings, mounts, new namespaces,
//! ptrace, clock and swap changes, perf, userfaultfd, handle-based opens). Denied calls
//! fail with `EPERM`; `clone3` fails with `ENOSYS`, because its flags sit in memory a
//! filter cannot read, and libc then falls back to `clone`, whose flags it can.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Calls that fail with `EPERM` whatever their arguments, beside [`OBSERVED`].
const DENIED: &[libc::c_long] = &[
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_fsconfig,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_syslog,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_userfaultfd,
    libc::SYS_perf_event_open,
    libc::SYS_name_to_handle_at,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_lookup_dcookie,
    // io_uring would let opens and connects bypass the tracer, and is a large attack
    // surface of its own.
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// The escape routes, with their names: they fail with `EPERM` too, and a traced run
/// refuses them in the tracer rather than here, so the attempt is recorded
/// (`runtime/escape-attempt`): a deny-list `EPERM` outranks a notification, and the
/// tracer would never see them. The tracer answers each with `EPERM` by its number; an
/// untraced run refuses them here like the rest.
pub(crate) const OBSERVED: &[(libc::c_long, &str)] = &[
    (libc::SYS_mount, "mount"),
    (libc::SYS_umount2, "umount2"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_move_mount, "move_mount"),
    (libc::SYS_open_tree, "open_tree"),
    (libc::SYS_fsopen, "fsopen"),
    (libc::SYS_fsmount, "fsmount"),
    (libc::SYS_fspick, "fspick"),
    (libc::SYS_mount_setattr, "mount_setattr"),
    (libc::SYS_chroot, "chroot"),
    (libc::SYS_unshare, "unshare"),
    (libc::SYS_setns, "setns"),
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_process_vm_writev, "process_vm_writev"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_delete_module, "delete_module"),
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_kexec_file_load, "kexec_file_load"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_open_by_handle_at, "open_by_handle_at"),
];

/// Whether `nr` is one of the [`OBSERVED`] escape routes.
pub(crate) fn observed(nr: libc::c_long) -> bool {
    OBSERVED.iter().any(|(n, _)| *n == nr)
}

/// The name of an [`OBSERVED`] call.
pub(crate) fn name(nr: libc::c_long) -> &'static str {
    OBSERVED
        .iter()
        .find(|(n, _)| *n == nr)
        .map_or("?", |(_, name)| name)
}

/// `clone` flags that make a namespace.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWCGROUP,
];

fn arch() -> TargetArch {
    if cfg!(target_arch = "aarch64") {
        TargetArch::aarch64
    } else {
        TargetArch::x86_64
    }
}

/// The two programs: the `EPERM` deny-list and the `clone3` → `ENOSYS` one. `traced`:
/// the tracer refuses the [`OBSERVED`] calls, so the deny-list leaves them to it.
pub(crate) fn programs(traced: bool) -> Result<[BpfProgram; 2], seccompiler::Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .copied()
        .chain(OBSERVED.iter().map(|(n, _)| *n).filter(|_| !traced))
        .map(|n| (n, Vec::new()))
        .collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let flag = flag as u64;
            SeccompRule::new(vec![SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?])
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let eperm = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch(),
    )?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch(),
    )?;
    Ok([eperm.try_into()?, clone3.try_into()?])
}

/// x86-64's x32 ABI numbers every call with bit 30 set, which the filters above (and
/// the tracer's) do not know: refuse those calls outright.
fn no_x32() -> BpfProgram {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let f = |code: u32, jt: u8, jf: u8, k: u32| seccompiler::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    vec![
        // Other architectures are the deny-list's business (it kills them).
        f(BPF_LD | BPF_W | BPF_ABS, 0, 0, 4),
        f(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 0xc000_003e),
        f(BPF_RET | BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
        f(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0),
        f(BPF_JMP | BPF_JSET | BPF_K, 0, 1, 0x4000_0000),
        f(
            BPF_RET | BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        f(BPF_RET | BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Install the programs on the calling thread (`no_new_privs` must be set). With
/// `traced`, the tracer's filter must follow before anything else runs.
pub(crate) fn install(traced: bool) -> Result<(), seccompiler::Error> {
    for p in programs(traced)? {
        seccompiler::apply_filter(&p)?;
    }
    if cfg!(target_arch = "x86_64") {
        seccompiler::apply_filter(&no_x32())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filters_compile() {
        let [a, b] = super::programs(false).unwrap();
        assert!(a.len() > super::DENIED.len());
        assert!(!b.is_empty());
        let [c, _] = super::programs(true).unwrap();
        assert!(c.len() < a.len());
    }

    #[test]
    fn observed_calls_are_apart_from_the_rest_and_named() {
        for (nr, name) in super::OBSERVED {
            assert!(!super::DENIED.contains(nr), "{name}");
            assert!(super::observed(*nr));
            assert_eq!(super::name(*nr), *name);
        }
        assert_eq!(super::name(libc::SYS_getpid), "?");
    }
}
