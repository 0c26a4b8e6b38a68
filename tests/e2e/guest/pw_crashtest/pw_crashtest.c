// SPDX-License-Identifier: GPL-2.0
/*
 * pw_crashtest: the kernel failures panicwatch's real-kernel e2e replays, on request. Debian's
 * kernels ship neither lkdtm nor test_lockup, so this small module stands in for them. It is
 * built in the e2e image against the guest kernel's headers (tests/e2e/image.py).
 *
 * Files in /sys/kernel/debug/pw_crashtest/, each write-only for root:
 *
 *   softlockup  "N": a kernel thread spins for N seconds with preemption disabled, a soft
 *               lockup once N > 2 * kernel.watchdog_thresh. A thread of its own rather than
 *               the writing task, so the report's stack starts in this module and not in the
 *               VFS (syzkaller's rules name a stall by the frame above the syscall path).
 *   null_deref  anything: a write through a NULL pointer, an oops.
 *   bug         anything: BUG().
 *   warn        anything: WARN().
 */
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/preempt.h>

#define PW_MAX_SPIN_SECONDS 600

static struct dentry *pw_dir;

static noinline void pw_spin(unsigned long seconds)
{
	unsigned long end = jiffies + seconds * HZ;

	preempt_disable();
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
}

static int pw_spin_thread(void *data)
{
	pw_spin((unsigned long)data);
	return 0;
}

static noinline void pw_null_deref(void)
{
	int *volatile p = NULL; /* volatile: the compiler may not prove it NULL and drop the store */

	*p = 0x5057;
}

static noinline void pw_bug(void)
{
	BUG();
}

static noinline void pw_warn(void)
{
	WARN(1, "pw_crashtest: WARN() on request\n");
}

static ssize_t softlockup_write(struct file *file, const char __user *buf, size_t count,
				loff_t *ppos)
{
	struct task_struct *thread;
	unsigned long seconds;
	int err;

	err = kstrtoul_from_user(buf, count, 10, &seconds);
	if (err)
		return err;
	if (seconds == 0 || seconds > PW_MAX_SPIN_SECONDS)
		return -EINVAL;
	thread = kthread_run(pw_spin_thread, (void *)seconds, "pw_spin");
	return IS_ERR(thread) ? PTR_ERR(thread) : count;
}

static ssize_t null_deref_write(struct file *file, const char __user *buf, size_t count,
				loff_t *ppos)
{
	pw_null_deref();
	return count;
}

static ssize_t bug_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	pw_bug();
	return count;
}

static ssize_t warn_write(struct file *file, const char __user *buf, size_t count, loff_t *ppos)
{
	pw_warn();
	return count;
}

#define PW_FOPS(name) \
	static const struct file_operations name##_fops = { \
		.owner = THIS_MODULE, \
		.open = simple_open, \
		.write = name##_write, \
		.llseek = noop_llseek, \
	}

PW_FOPS(softlockup);
PW_FOPS(null_deref);
PW_FOPS(bug);
PW_FOPS(warn);

static int __init pw_crashtest_init(void)
{
	pw_dir = debugfs_create_dir("pw_crashtest", NULL);
	debugfs_create_file("softlockup", 0200, pw_dir, NULL, &softlockup_fops);
	debugfs_create_file("null_deref", 0200, pw_dir, NULL, &null_deref_fops);
	debugfs_create_file("bug", 0200, pw_dir, NULL, &bug_fops);
	debugfs_create_file("warn", 0200, pw_dir, NULL, &warn_fops);
	return 0;
}

static void __exit pw_crashtest_exit(void)
{
	debugfs_remove_recursive(pw_dir);
}

module_init(pw_crashtest_init);
module_exit(pw_crashtest_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("panicwatch e2e: soft lockup, oops, BUG() and WARN() on request");
