"""The kernel's crash report formats and how syzbot names each one.

A report starts on a line holding a header ("BUG:", "WARNING:", ...); its formats say
what the title is and which stack frame is the culprit. The rules follow syzkaller's
published Linux report conventions (pkg/report/linux.go), so that a title pasted into a
search of lore.kernel.org or the syzbot dashboard finds the same crash. Pure data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_EXPANSIONS = (
    ("{{PC}}", r"\[<?(?:0x)?[0-9a-f]+>?\]"),
    ("{{FUNC}}", r"([a-zA-Z0-9_]+)(?:\.|\+)"),
    ("{{SRC}}", r"([a-zA-Z0-9\-_/.]+\.[a-z]+:[0-9]+)"),
)


def compile_format(pattern: str) -> re.Pattern[str]:
    for name, expansion in _EXPANSIONS:
        pattern = pattern.replace(name, expansion)
    return re.compile(pattern)


# A "parse the stack from here" step in a culprit search.
STACK = re.compile("")

RIP_FRAME = compile_format(
    r"(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:{{PC}} +){0,2}{{FUNC}}|(?:[0-9]+:)?0x[0-9a-f]+"
    r"|(?:[0-9]+:)?{{PC}} +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))")
CALL_TRACE = compile_format(r"(?:Call (?:T|t)race:)|(?:Backtrace:)")
STACK_STARTS = tuple(re.compile(p) for p in (
    r"Call (?:T|t)race", r"Allocated:", r"Allocated by task [0-9]+:", r"Freed:",
    r"Freed by task [0-9]+:", r"[^k] backtrace(?: \(crc [0-9a-fA-F]*\))?:", r"Backtrace:",
    r"Uninit was stored to memory at"))
FRAME_LINES = (
    compile_format(r"^ *(?:{{PC}} ){0,2}{{FUNC}}"),
    compile_format(r"^ *{{PC}} \(([a-zA-Z0-9_.]+)\) from {{PC}} \({{FUNC}}"),  # 32-bit arm
)
# Fault-injection stacks interleave with reports; a frame from one is not the culprit.
CORRUPTED_LINES = (compile_format(r"^( \[<?(?:0x)?[0-9a-f]+>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x"),)

# Frames that are machinery, never the bug: reporting, allocation, locking, waiting,
# string and list helpers, user copies, device teardown.
GENERIC_FRAMES = (
    "__sanitizer", "__asan", "kasan", "hwasan", "__msan", "kmsan", "kcsan_setup_watchpoint",
    "check_memory_region", "check_heap_object", "check_object", "read_word_at_a_time",
    "(read|write)_once_.*nocheck", "print_address_description", "panic", "invalid_op",
    "report_bug", "fixup_bug", "print_report", "print_usage_bug", "do_error", "_trap$|do_trap",
    "show_stack", "dump_stack", "walk_stack", "dump_backtrace", "warn_slowpath", "warn_alloc",
    "warn_bogus", "__warn", "alloc_page", "k?v?(?:m|z|c)alloc", "krealloc", "kmem_cache",
    "allocate_slab", "__alloc_frozen_pages_noprof", "folio_(?:alloc|unlock)",
    "filemap_alloc_folio", "__filemap_get_folio", "find_or_create_page", "do_read_cache_folio",
    "read_cache_page", "pagecache_get_page", "grab_cache_page_write_begin", "slab_",
    "debug_object", "timer_is_static_object", "work_is_static_object", "__might_fault",
    "print_unlock", "imbalance_bug", "lockdep", "bh_enable", "bh_disable", "perf_trace",
    "lock_acquire", "lock_release", "lock_class", "mark_lock", "(reacquire|mark)_held_locks",
    "raw_spin_rq", "spin_lock", "spin_trylock", "spin_unlock", "read_lock", "read_trylock",
    "write_lock", "write_trylock", "read_unlock", "write_unlock", "^down$", "down_read",
    "down_write", "down_read_trylock", "down_write_trylock", "down_trylock", "up_read",
    "up_write", "^mutex_", "^__mutex_", "^rt_mutex_", "owner_on_cpu", "osq_lock", "osq_unlock",
    "atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)",
    "(set|clear|change|test)_bit", "__wake_up", "^refcount_", "^kref_", "ref_tracker",
    "seqprop_assert", "memcpy", "memcmp", "memset", "memchr", "memmove", "memdup", "strcmp",
    "strncmp", "strcpy", "strlcpy", "strncpy", "strscpy", "strlen", "strstr", "strnstr",
    "strnlen", "strchr", "strdup", "strndup", "copy_to_user", "copy_from_user", "copy_to_iter",
    "copy_from_iter", "copy_page_to_iter", "copy_page_from_iter", "copy_folio_to_iter",
    "^copyin$", "^copyout$", "put_user", "get_user", "might_fault", "might_sleep", "list_add",
    "list_del", "list_replace", "list_move", "list_splice", "^rb_", "^__rb_",
    "_indirect_thunk_", "string", "pointer", "snprintf", "scnprintf", "kasprintf",
    "kvasprintf", "printk", "va_format", "dev_info", "dev_notice", "dev_warn", "dev_err",
    "dev_alert", "dev_crit", "dev_emerg", "program_check_exception", "program_check_common",
    "del_timer", "flush_work", "__cancel_work_timer", "cancel_work_sync", "try_to_grab_pending",
    "flush_workqueue", "drain_workqueue", "destroy_workqueue", "queue_work", "finish_wait",
    "kthread_stop", "kobject_", "add_uevent_var", "get_device_parent", "device_add",
    "device_del", "device_unregister", "device_destroy", "device_release",
    "devres_release_all", "hwrng_unregister", "i2c_del_adapter", "__unregister_client",
    "device_for_each_child", "rollback_registered", "unregister_netdev", "sysfs_remove",
    "device_remove_file", "tty_unregister_device", "dummy_urb_enqueue", "usb_kill_urb",
    "usb_kill_anchored_urbs", "usb_control_msg", "usb_hcd_submit_urb", "usb_submit_urb",
    "^complete$", "wait_for_completion", "^kv?free$", "kfree_skb", "readb$", "readw$",
    "readl$", "readq$", "writeb$", "writew$", "writel$", "writeq$", "logic_in", "logic_out",
    r"^crc\d+", "crc_itu_t", "__might_resched", "assertfail", "^iput$", "^iput_final$",
    "^ihold$", "hex_dump_to_buffer", "print_hex_dump", "^klist_",
    "(trace|lockdep)_(hard|soft)irq", "^(un)?lock_page", "stack_trace_consume_entry",
    "arch_stack_walk", "stack_trace_save", "insert_work", "__queue_delayed_work",
    "queue_delayed_work_on", "ida_free", "do_(kernel|translation)_fault", "do_mem_abort",
    "el1_abort", "el1h_64_sync(?:_handler)?", "print_tainted", "xas_(?:start|load|find)",
    "find_lock_entries", "truncate_inode_pages_range", "__phys_addr", "__fortify_report",
    "cleanup_srcu_struct", "rhashtable_lookup", "extract_(user|iter)_to_sg", "drop_nlink",
    "^get_taint$", "^put_device$", "lock_timer_base", "__timer_delete_sync",
    "sk_stop_timer_sync", "__mod_timer", "fast_dput", "dput",
)
# Architectures and syscall wrappers name one syscall differently; the title does not.
SYSCALL_PREFIXES = ("SYSC_", "SyS_", "sys_", "__x64_", "__ia32_", "__arm64_", "____sys_",
                    "___sys_", "__sys_", "__se_", "__se_sys_", "__do_sys_", "compat_SYSC_",
                    "compat_SyS_", "ksys_")

# Stalls and lockups are caught at a random point of a loop; the function that entered it,
# just above one of these dispatch points, names the stall stably.
STALL_ANCHORS = tuple(re.compile(p) for p in (
    "process_one_work", "do_syscall_", "do_fast_syscall_", "sysenter_dispatch",
    "tracesys_phase2", "el0_svc_handler", "invoke_syscall", "ret_fast_syscall",
    "netif_receive_skb", "do_softirq", "call_timer_fn", "_run_timers", "run_timer_softirq",
    "hrtimer_run", "run_ksoftirqd", "smpboot_thread_fn", "^kthread$", "start_secondary",
    "cpu_startup_entry", "ret_from_fork", "vfs_write", "vfs_read", "vfs_iter_read",
    "vfs_iter_write", "do_iter_read", "do_iter_write", "call_read_iter", "call_write_iter",
    "new_sync_read", "new_sync_write", "vfs_ioctl", "ksys_ioctl", "compat_ioctl",
    "compat_sys_ioctl", "blkdev_driver_ioctl", "blkdev_ioctl", "^call_read_iter",
    "^call_write_iter", "do_iter_readv_writev", "^call_mmap", "mmap_region", "do_mmap",
    "do_dentry_open", "vfs_open", "^sock_sendmsg", "^sock_recvmsg", "^sock_release",
    "^__sock_release", "^setsockopt$", "kernel_setsockopt", "sock_common_setsockopt",
    "^listen$", "kernel_listen", "sk_common_release", "^sock_mmap", "^accept$",
    "kernel_accept", "^sock_do_ioctl", "^sock_ioctl", "^compat_sock_ioctl",
    "^nfnetlink_rcv_msg", "^rtnetlink_rcv_msg", "^netlink_dump",
    "^(sys_)?(socketpair|connect|ioctl)", "__do_fault", "do_page_fault", "^page_fault$",
    "__fput", "task_work_run", "exit_to_usermode", "smp_call_function", "tasklet_action",
    "tasklet_hi_action",
))
# A hung task waits on something; these say what, the rest is the waiting itself.
HUNG_TASK_ANCHORS = (("rtnl_lock", ""), ("synchronize_rcu", "synchronize_rcu"),
                     ("synchronize_srcu", "synchronize_rcu"), ("synchronize_net", "synchronize_rcu"),
                     ("synchronize_sched", "synchronize_rcu"))
HUNG_TASK_WAITING = ("sched", "_lock", "_slowlock", "down", "rwsem", "completion", "kthread",
                     "wait", "synchronize", "context_switch", "__switch_to",
                     "cancel_delayed_work", "rcu_barrier")


@dataclass(frozen=True)
class Culprit:
    """How to find the culprit frame: steps matched in order (a regex, or STACK)."""

    steps: tuple[re.Pattern[str], ...]
    fallback: tuple[re.Pattern[str], ...] = ()  # tried when the steps find nothing
    skip: tuple[str, ...] = ()
    pick: str = "first"  # "first", "stall" or "hung_task"


@dataclass(frozen=True)
class Format:
    title: re.Pattern[str]
    text: str  # "{0}" ... are the title's (or report's) groups, then the culprit
    report: re.Pattern[str] | None = None
    culprit: Culprit | None = None
    corrupted: bool = False


@dataclass(frozen=True)
class Header:
    marker: str
    formats: tuple[Format, ...]
    not_reports: tuple[re.Pattern[str], ...] = field(default=())


def _c(*steps: re.Pattern[str], skip: tuple[str, ...] = (), pick: str = "first",
       fallback: tuple[re.Pattern[str], ...] = ()) -> Culprit:
    return Culprit(tuple(steps), fallback, skip, pick)


def _f(title: str, text: str, culprit: Culprit | None = None, report: str | None = None,
       corrupted: bool = False) -> Format:
    return Format(compile_format(title), text, compile_format(report) if report else None,
                  culprit, corrupted)


_AT_RIP = _c(RIP_FRAME, CALL_TRACE, STACK)
_TRACE = _c(CALL_TRACE, STACK)


def _warning(*skip: str) -> Culprit:
    # x86-64 prints the trapping RIP first; powerpc an "--- interrupt:" line.
    start = compile_format("(?:" + RIP_FRAME.pattern + r"|--- interrupt: [0-9]+ at {{FUNC}})")
    return Culprit((start, STACK), (CALL_TRACE, STACK), skip)


_INVALID_FREE = r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}"
_LOCK_AT = r"(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}"

HEADERS: tuple[Header, ...] = (
    Header("BUG:", (
        _f("BUG: KASAN:", "KASAN: {0} {2} in {3}",
           _c(compile_format(r"BUG: KASAN: (?:[a-z\-]+) in {{FUNC}}"), CALL_TRACE, STACK,
              skip=("kernel_fault", "tag_check", "mem_abort", "^el1_", "^el1h_")),
           report=r"BUG: KASAN: ([a-z\-]+) in {{FUNC}}(?:.*\n)+?"
                  r".*(Read|Write) (?:of size|at addr) (?:[0-9a-f]+)"),
        _f("BUG: KASAN:", "KASAN: invalid-free in {1}",
           _c(compile_format(_INVALID_FREE), CALL_TRACE, STACK,
              skip=("slab_", "kfree", "vunmap", "vfree")),
           report=_INVALID_FREE),
        _f(r"BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)",
           "KASAN: {0} {1}"),
        _f("BUG: KASAN: (.*)", "KASAN: {0}", corrupted=True),
        _f("BUG: KMSAN:", "KMSAN: {0} in {2}",
           _c(STACK, compile_format("(Local variable .* created at:|Uninit was created at:)"), STACK,
              skip=("alloc_skb", "netlink_ack", "netlink_rcv_skb", "_encrypt$",
                    "^(?:crypto|cipher|drbg|rng)_")),
           report=r"BUG: KMSAN: ([a-z\-]+) in {{FUNC}}"),
        _f("BUG: KCSAN:", "KCSAN: {0}", report="BUG: KCSAN: (.*)"),
        _f("BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in {{FUNC}}",
           "KFENCE: {0} {1} in {3}",
           _c(compile_format(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), STACK)),
        _f("BUG: KFENCE: invalid free in {{FUNC}}", "KFENCE: invalid free in {1}",
           _c(compile_format(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), STACK)),
        _f("BUG: KFENCE: invalid (read|write) in {{FUNC}}", "KFENCE: invalid {0} in {2}",
           _c(compile_format(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), STACK)),
        _f("BUG: KFENCE: memory corruption in {{FUNC}}", "KFENCE: memory corruption in {1}",
           _c(compile_format(r"BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}"), STACK)),
        _f("BUG: (?:unable to handle kernel paging request|unable to handle page fault for address"
           "|Unable to handle kernel data access)",
           "BUG: unable to handle kernel paging request in {0}", _AT_RIP),
        _f("BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference"
           "|Kernel NULL pointer dereference)",
           "BUG: unable to handle kernel NULL pointer dereference in {0}", _AT_RIP),
        _f("BUG: (?:unable to handle kernel|Unable to handle kernel)",
           "BUG: unable to handle kernel", corrupted=True),
        _f("BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion"
           "|bad magic|wrong owner|wrong CPU|trylock failure on UP)",
           "BUG: {0} {1} in {2}", _c(CALL_TRACE, STACK, skip=("spin_", "_lock", "_unlock"))),
        _f("BUG: soft lockup", "BUG: soft lockup in {0}", _c(RIP_FRAME, CALL_TRACE, STACK, pick="stall")),
        _f("BUG: .*still has locks held!", "BUG: still has locks held in {0}",
           report=r"BUG: .*still has locks held!(?:.*\n)+?.*{{PC}} +{{FUNC}}"),
        _f("BUG: scheduling while atomic", "BUG: scheduling while atomic in {0}",
           _c(CALL_TRACE, STACK, skip=("schedule",))),
        _f("BUG: lock held when returning to user space",
           "BUG: lock held when returning to user space in {0}",
           report=r"BUG: lock held when returning to user space(?:.*\n)+?"
                  r".*leaving the kernel with locks still held" + _LOCK_AT),
        _f("BUG: bad unlock balance detected!", "BUG: bad unlock balance in {0}",
           _c(compile_format("{{PC}} +{{FUNC}}"), CALL_TRACE, STACK)),
        _f("BUG: held lock freed!", "BUG: held lock freed in {0}",
           report=r"BUG: held lock freed!(?:.*\n)+?.*{{PC}} +{{FUNC}}"),
        _f("BUG: Bad rss-counter state", "BUG: Bad rss-counter state"),
        _f("BUG: non-zero nr_ptes on freeing mm", "BUG: non-zero nr_ptes on freeing mm"),
        _f("BUG: non-zero nr_pmds on freeing mm", "BUG: non-zero nr_pmds on freeing mm"),
        _f("BUG: Dentry .* still in use", "BUG: Dentry still in use in {0}",
           report=r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]"),
        _f("BUG: Bad page (state|cache)", "BUG: Bad page {0} in {1}",
           _c(compile_format("page last allocated"), STACK,
              skip=("(free|put|get|update|release)_page", "free_unref", "^_*folio",
                    "truncate_inode_pages", "page_frag_free", "alloc", "vmap", "page_owner"))),
        _f("BUG: Bad page map", "BUG: Bad page map"),
        _f("BUG: workqueue lockup", "BUG: workqueue lockup"),
        _f("BUG: sleeping function called from invalid context at (.*)",
           "BUG: sleeping function called from invalid context in {1}", _TRACE),
        _f(r"BUG: using ([a-z_]+)\(\) in preemptible", "BUG: using {0}() in preemptible code in {1}",
           _c(CALL_TRACE, STACK, skip=("dump_stack", "preemption", "preempt", "debug_",
                                       "processor_id", "this_cpu"))),
        _f("BUG: workqueue leaked lock or atomic", "BUG: workqueue leaked lock or atomic in {0}",
           report=r"BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: ([a-zA-Z0-9_]+)\n"),
        _f("BUG: memory leak", "memory leak in {0}",
           _c(compile_format(r"backtrace(?: \(crc [0-9a-fA-F]*\))?:"), STACK,
              skip=("kmemleak", "mmap", "kmem", "slab", "alloc", "create_object", "idr_get",
                    "list_lru_init", "kasprintf", "kvasprintf", "pcpu_create", "strdup",
                    "strndup", "memdup"))),
        _f("BUG: .*stack guard page was hit at", "BUG: stack guard page was hit in {0}",
           _c(RIP_FRAME, CALL_TRACE, STACK, pick="stall")),
        _f("BUG: Invalid wait context", "WARNING: locking bug in {0}",
           _c(CALL_TRACE, STACK, skip=("lock_sock", "release_sock"))),
        _f(r"BUG:\s*(?:\n|$)", "BUG: corrupted", corrupted=True),
    ), tuple(re.compile(p) for p in ("ODEBUG:", "Boot_DEBUG:", "xlog_status:", "DEBUG:",
                                     "BUG: no syscalls can create resource"))),
    Header("WARNING:", (
        _f(r"WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)",
           "WARNING: ODEBUG bug in {0}",
           _warning("debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "vunmap", "vfree",
                    "__free_", "debug_check", "kobject_")),
        _f(r"WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)", "WARNING: bad usercopy in {0}",
           _warning("usercopy", "__check")),
        _f(r"WARNING: .*lib/kobject\.c.* (?:kobject_|at)", "WARNING: kobject bug in {0}",
           _warning("kobject_")),
        _f(r"WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)",
           "WARNING: proc registration bug in {0}", _warning("proc_")),
        _f(r"WARNING: .*lib/refcount\.c.* (?:refcount_|at)", "WARNING: refcount bug in {0}",
           _warning("refcount", "kobject_")),
        _f(r"WARNING: .*kernel/locking/lockdep\.c.*lock_", "WARNING: locking bug in {0}",
           _warning("lock_sock", "release_sock")),
        _f("WARNING: .*still has locks held!", "WARNING: still has locks held in {0}",
           report=r"WARNING: .*still has locks held!(?:.*\n)+?.*at: {{FUNC}}"),
        _f("WARNING: Nested lock was not taken", "WARNING: nested lock was not taken in {0}",
           _warning()),
        _f("WARNING: lock held when returning to user space",
           "WARNING: lock held when returning to user space in {0}",
           report=r"WARNING: lock held when returning to user space(?:.*\n)+?"
                  r".*leaving the kernel with locks still held" + _LOCK_AT),
        _f(r"WARNING: .*mm/.*\.c.* k?.?malloc", "WARNING: kmalloc bug in {0}",
           _warning("kmalloc", "krealloc", "slab", "kmem")),
        _f(r"WARNING: .*mm/vmalloc.c.*__vmalloc_node", "WARNING: zero-size vmalloc in {0}",
           _warning()),
        _f("WARNING: .* usb_submit_urb", "WARNING in {0}/usb_submit_urb",
           _warning("usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg",
                    "usb_control_msg")),
        _f(r"WARNING: {{SRC}} at 0x\d+, CPU#\d+", "WARNING in {1}", _warning()),
        _f("WARNING: .* at {{SRC}} {{FUNC}}", "WARNING in {2}", _warning()),
        _f("WARNING: {{SRC}} at {{FUNC}}", "WARNING in {2}", _warning()),
        _f(r"WARNING: \[.*\] {{SRC}} at {{FUNC}}.*", "WARNING in {2}", _warning()),
        _f("WARNING: possible circular locking dependency detected", "possible deadlock in {0}",
           _c(compile_format("at: (?:{{PC}} +)?{{FUNC}}"), compile_format("at: (?:{{PC}} +)?{{FUNC}}"),
              STACK, skip=("process_one_work", "flush_workqueue", "drain_workqueue",
                           "destroy_workqueue")),
           report=r"WARNING: possible circular locking dependency detected(?:.*\n)+?"
                  r".*is trying to acquire lock"),
        _f("WARNING: possible irq lock inversion dependency detected", "possible deadlock in {0}",
           report=r"WARNING: possible irq lock inversion dependency detected(?:.*\n)+?"
                  r".*just changed the state of lock" + _LOCK_AT),
        _f("WARNING: .*-safe -> .*-unsafe lock order detected", "possible deadlock in {0}",
           _c(compile_format("which became (?:.*) at:"), STACK)),
        _f("WARNING: possible recursive locking detected", "possible deadlock in {0}",
           report=r"WARNING: possible recursive locking detected(?:.*\n)+?"
                  r".*is trying to acquire lock" + _LOCK_AT),
        _f("WARNING: inconsistent lock state", "inconsistent lock state in {1}", _TRACE,
           report=r"WARNING: inconsistent lock state(?:.*\n)+?.*takes" + _LOCK_AT),
        _f("WARNING: suspicious RCU usage", "WARNING: suspicious RCU usage in {1}",
           _c(CALL_TRACE, STACK, skip=("rcu", "kmem", "slab")),
           report=r"WARNING: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}"),
        _f("WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value",
           "WARNING: kernel stack regs has bad '{0}' value"),
        _f("WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value",
           "WARNING: kernel stack frame pointer has bad value"),
        _f("WARNING: bad unlock balance detected!", "WARNING: bad unlock balance in {0}",
           _c(compile_format("{{PC}} +{{FUNC}}"), CALL_TRACE, STACK)),
        _f("WARNING: held lock freed!", "WARNING: held lock freed in {0}",
           report=r"WARNING: held lock freed!(?:.*\n)+?.*at:(?: {{PC}})? +{{FUNC}}"),
        _f("WARNING: kernel stack regs .* has bad 'bp' value", "WARNING: kernel stack regs has bad value"),
        _f("WARNING: kernel stack frame pointer .* has bad value",
           "WARNING: kernel stack regs has bad value"),
        _f(r"WARNING:\s*(?:\n|$)", "WARNING: corrupted", corrupted=True),
    ), tuple(re.compile(p) for p in (
        "WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
        "WARNING: workqueue cpumask: online intersect > possible intersect",
        "WARNING: [Tt]he mand mount option", r"WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1",
        "WARNING: Unprivileged eBPF is enabled with eIBRS",
        "WARNING: fbcon: Driver '(.*)' missed to adjust virtual screen size",
        "WARNING: See https.* for mitigation options.", "WARNING: kernel not compiled with CPU_SRSO",
        r"EXT4-[Ff][Ss](?: \(.*\))?:",
        "(?i)warning: .* uses (deprecated v2 capabilities|wireless extensions)",
        r"XFS \(\w+\): WARNING"))),
    Header("INFO:", (
        _f("INFO: possible circular locking dependency detected", "possible deadlock in {0}",
           report=r"INFO: possible circular locking dependency detected \](?:.*\n)+?"
                  r".*is trying to acquire lock(?:.*\n)+?.*at: {{PC}} +{{FUNC}}"),
        _f("INFO: possible irq lock inversion dependency detected", "possible deadlock in {0}",
           report=r"INFO: possible irq lock inversion dependency detected \](?:.*\n)+?"
                  r".*just changed the state of lock(?:.*\n)+?.*at: {{PC}} +{{FUNC}}"),
        _f("INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected", "possible deadlock in {0}",
           report=r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected \](?:.*\n)+?"
                  r".*is trying to acquire(?:.*\n)+?.*at: {{PC}} +{{FUNC}}"),
        _f("INFO: possible recursive locking detected", "possible deadlock in {0}",
           report=r"INFO: possible recursive locking detected \](?:.*\n)+?"
                  r".*is trying to acquire lock(?:.*\n)+?.*at: {{PC}} +{{FUNC}}"),
        _f("INFO: inconsistent lock state", "inconsistent lock state in {0}",
           report=r"INFO: inconsistent lock state \](?:.*\n)+?.*takes(?:.*\n)+?.*at: {{PC}} +{{FUNC}}"),
        _f("INFO: rcu_(?:preempt|sched|bh) (?:self-)?detected(?: expedited)? stall",
           "INFO: rcu detected stall in {0}",
           Culprit((re.compile("apic_timer_interrupt"), RIP_FRAME, STACK),
                   (re.compile("(?:apic_timer_interrupt|Exception stack|el1h_64_irq)"), STACK),
                   ("apic_timer_interrupt", "rcu"), "stall")),
        _f("INFO: trying to register non-static key", "INFO: trying to register non-static key in {0}",
           _c(CALL_TRACE, STACK, skip=("stack", "lock", "IRQ"))),
        _f("INFO: suspicious RCU usage", "INFO: suspicious RCU usage in {1}",
           _c(CALL_TRACE, STACK, skip=("rcu", "kmem", "slab")),
           report=r"INFO: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}"),
        _f("INFO: task .* blocked for more than [0-9]+ seconds", "INFO: task hung in {0}",
           _c(CALL_TRACE, STACK, pick="hung_task")),
        _f("INFO: task .* can't die for more than .* seconds", "INFO: task can't die in {0}",
           _c(CALL_TRACE, STACK, skip=("schedule",))),
        _f("INFO: (Freed|Allocated) in (.*)", "INFO: {0} in {1}", corrupted=True),
        _f(r"INFO:\s*(?:\n|$)", "INFO: corrupted", corrupted=True),
    ), tuple(re.compile(p) for p in (
        "INFO: lockdep is turned off", "INFO: Stall ended before state dump start",
        "INFO: NMI handler", "INFO: recovery required on readonly filesystem",
        "(handler|interrupt).*took too long", r"INFO: sys_.* is not present in /proc/kallsyms",
        "INFO: no syscalls can create resource", "rmt_storage:INFO:", "_INFO:"))),
    Header("Unable to handle kernel", (
        _f("Unable to handle kernel (paging request|NULL pointer dereference|access to user memory)",
           "BUG: unable to handle kernel {0} in {1}", _AT_RIP),
    )),
    Header("general protection fault", (
        _f("general protection fault.*:", "general protection fault in {0}", _AT_RIP),
    ), (re.compile(r"general protection fault .* error:\d+ in "),)),
    Header("stack segment: ", (_f("stack segment: ", "stack segment fault in {0}", _AT_RIP),)),
    Header("Kernel panic", (
        _f("Kernel panic - not syncing: stack-protector:", "kernel panic: stack is corrupted in {0}",
           report="Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: {{FUNC}}"),
        _f("Kernel panic - not syncing: stack-protector:", "kernel panic: stack is corrupted in {0}",
           _c(CALL_TRACE, STACK, skip=("stack_chk",)),
           report="Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: [a-f0-9]+"),
        _f("Kernel panic - not syncing: corrupted stack end", "kernel panic: corrupted stack end in {0}",
           _c(CALL_TRACE, STACK, skip=("schedule", "retint_kernel"), pick="stall"),
           report="Kernel panic - not syncing: corrupted stack end detected inside scheduler"),
        _f("Kernel panic - not syncing: kernel stack overflow", "kernel stack overflow in {0}",
           _c(CALL_TRACE, STACK, skip=("bad_stack",), pick="stall")),
        _f("Kernel panic - not syncing: Attempted to kill init!", "kernel panic: Attempted to kill init!"),
        _f("Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+",
           "kernel panic: Couldn't open N_TTY ldisc"),
        # Printed after the report that caused it: as a title it means that report was lost.
        _f("Kernel panic - not syncing: Fatal exception", "kernel panic: Fatal exception", corrupted=True),
        _f("Kernel panic - not syncing: panic_on_warn set", "kernel panic: panic_on_warn set",
           corrupted=True),
        _f("Kernel panic - not syncing: hung_task: blocked tasks", "kernel panic: hung_task: blocked tasks",
           corrupted=True),
        _f("Kernel panic - not syncing: (.*)", "kernel panic: {0}"),
    )),
    Header("PANIC: double fault", (_f("PANIC: double fault", "PANIC: double fault in {0}", _c(RIP_FRAME)),)),
    Header("kernel BUG", (
        _f("kernel BUG at mm/usercopy.c", "BUG: bad usercopy in {0}",
           _c(CALL_TRACE, STACK, skip=("usercopy", "__check"))),
        _f("kernel BUG at lib/list_debug.c", "BUG: corrupted list in {0}", _TRACE),
        _f("kernel BUG at (.*)", "kernel BUG in {1}", _c(RIP_FRAME, CALL_TRACE, STACK, skip=("^skb_",))),
    )),
    Header("Kernel BUG", (_f("Kernel BUG (.*)", "kernel BUG {0}"),)),
    Header("BUG kmalloc-", (_f("BUG kmalloc-.*: Object already free", "BUG: Object already free"),)),
    Header("divide error:", (_f("divide error: ", "divide error in {0}", _c(RIP_FRAME)),)),
    Header("divide_error:", (_f("divide_error: ", "divide error in {0}", _c(RIP_FRAME)),)),
    Header("invalid opcode:", (_f("invalid opcode: ", "invalid opcode in {0}", _c(RIP_FRAME)),)),
    Header("UBSAN:", (
        _f("UBSAN:", "UBSAN: undefined-behaviour in {0}", _c(CALL_TRACE, STACK, skip=("ubsan", "overflow")),
           report="UBSAN: Undefined behaviour in"),
        _f("UBSAN: array-index-out-of-bounds in", "UBSAN: array-index-out-of-bounds in {0}",
           _c(CALL_TRACE, STACK, skip=("ubsan", "overflow"))),
        _f("UBSAN:", "UBSAN: {0} in {1}", _c(CALL_TRACE, STACK, skip=("ubsan", "overflow")),
           report="UBSAN: (.*?) in"),
    )),
    Header("unregister_netdevice: waiting for", (
        _f("unregister_netdevice: waiting for (?:.*) to become free",
           "unregister_netdevice: waiting for DEV to become free"),
    )),
    Header("VFS: Close: file count is 0", (
        _f("VFS: Close: file count is 0", "VFS: Close: file count is zero (use-after-free)"),)),
    Header("VFS: Busy inodes after unmount", (
        _f("VFS: Busy inodes after unmount", "VFS: Busy inodes after unmount (use-after-free)"),)),
    Header("Internal error:", (_f("Internal error:", "Internal error in {0}", _AT_RIP),)),
    Header("Unhandled fault:", (_f("Unhandled fault:", "Unhandled fault in {0}", _AT_RIP),)),
    Header("Alignment trap:", (_f("Alignment trap:", "Alignment trap in {0}", _AT_RIP),)),
)

# Reports the kernel prints without an "end trace" marker and lives through unless the matching
# *_panic sysctl is set, in which case panic() follows at once: one followed by another report
# was survived (a soft lockup reported with softlockup_panic=0, then one that panicked).
UNTERMINATED = re.compile(r"BUG: soft lockup|INFO: task .* blocked for more than|"
                          r"INFO: rcu_\w+ (self-)?detected|rcu: INFO: rcu_\w+ (self-)?detected")
# Lines with a header that do not start a new report inside another one.
CONTINUATIONS = tuple(re.compile(p) for p in (
    "invalid opcode: 0000", "Kernel panic - not syncing", "unregister_netdevice: waiting for",
    "PANIC: double fault", "Internal error:"))
# Not crashes themselves, but they print a stack that would be mistaken for the report's.
STACK_PRINTING_NOTICES = ("vmalloc: allocation failure:", "FAULT_INJECTION: forcing a failure",
                          "FAULT_FLAG_ALLOW_RETRY missing")

# Titles never hold what differs from one occurrence of a crash to the next.
TITLE_VARIABLES = (
    (re.compile(r"syz-executor\.?[0-9]+((/|:)[0-9]+)?"), "syz-executor"),
    (re.compile(r"syzkaller[0-9]+((/|:)[0-9]+)?"), "syzkaller"),
    (re.compile(r"([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}"), r"\1ADDR"),
    (re.compile(r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})"), "IP"),
    (re.compile(r"(\.\w+)(:[0-9]+)+"), r"\1:LINE"),
    (re.compile(r"([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+"), r"\1"),
    (re.compile(r"CPU#[0-9]+"), "CPU"),
    (re.compile(r"(\W)(\d+)(\W|$)"), r"\1NUM\3"),
    (re.compile(r"(\d+){7,}"), "NUM"),
)
MAX_TITLE = 120
