/*
 * main.c - yun-vmm: one process = one microVM.
 *
 * Parses the configuration, opens the console, then builds and runs the VM
 * until the guest ends it; with --reboot a guest reset builds a fresh VM in
 * the same process (same console). Signals SIGTERM/SIGINT/SIGHUP stop the
 * VM with status 128 + signal.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "config.h"
#include "console.h"
#include "snapshot/snapshot.h"
#include "snapshot/trigger.h"
#include "vm.h"

#define EXIT_HOST_ERROR 1

static struct vm *current_vm;
static struct console *the_console;
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;

static void fatal_signal(int sig)
{
	console_restore_terminal();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Termination signals are taken by this thread only, then stop the VM. */
static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		pthread_mutex_lock(&current_lock);
		if (current_vm) {
			char msg[64];

			snprintf(msg, sizeof(msg), "stopped by signal %s", strsignal(sig));
			vm_request_stop(current_vm, VM_STOP_ERROR, 128 + sig, msg, NULL);
		} else {
			/* No VM to stop yet (or any more): leave nothing behind and go. */
			if (the_console)
				console_abandon(the_console);
			else
				console_restore_terminal();
			_exit(128 + sig);
		}
		pthread_mutex_unlock(&current_lock);
	}
	return NULL;
}

static int setup_signals(sigset_t *term, struct yun_err *err)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	pthread_t tid;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
		struct sigaction sa = { .sa_handler = fatal_signal, .sa_flags = SA_RESETHAND };

		sigemptyset(&sa.sa_mask);
		sigaction(fatal[i], &sa, NULL);
	}
	sigemptyset(term);
	sigaddset(term, SIGTERM);
	sigaddset(term, SIGINT);
	sigaddset(term, SIGHUP);
	/* Blocked here, so every thread created later inherits the block. */
	pthread_sigmask(SIG_BLOCK, term, NULL);
	rc = pthread_create(&tid, NULL, signal_thread, term);
	if (rc)
		return yun_err_errno(err, rc, "signal thread");
	pthread_detach(tid);
	return vcpu_init_signals(err);
}

static void console_quit(void *ctx)
{
	vm_request_stop(ctx, VM_STOP_POWEROFF, 0, "quit from the console (Ctrl-A x)", NULL);
}

/* --restore's options as vm_restore takes them. */
static void restore_opts(const struct vmm_restore *r, struct vm_restore_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->resume = r->resume;
	o->track_dirty = r->dirty;
	o->vsock_cid = r->vsock_cid;
	o->vsock_socket = r->vsock_socket;
	for (unsigned i = 0; i < CONFIG_MAX_NETS; i++) {
		o->tap[i] = r->tap[i];
		o->mac[i] = r->mac[i];
	}
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		o->disk[i] = r->disk[i];
}

/*
 * Build and run one VM; *reset tells whether the guest asked for a reset.
 * With restored != NULL the VM comes from cfg's --restore snapshot and its
 * configuration is left in *restored (for a reboot of that VM).
 */
static int run_once(const struct vmm_config *cfg, struct console *con,
		    struct vmm_config *restored, bool *reset)
{
	struct yun_err err = { 0 };
	struct vm *vm = calloc(1, sizeof(*vm));
	struct vm_restore_opts opts;
	struct snap_trigger trigger;
	int status, rc;

	*reset = false;
	if (!vm) {
		yun_error("out of memory");
		return EXIT_HOST_ERROR;
	}
	if (restored) {
		restore_opts(&cfg->restore, &opts);
		rc = vm_restore(vm, restored, con, cfg->restore.state, cfg->restore.mem, &opts,
				&err);
	} else {
		rc = vm_create(vm, cfg, con, &err);
	}
	if (rc < 0) {
		yun_error("%s", err.msg);
		free(vm);
		return EXIT_HOST_ERROR;
	}
	if (snap_trigger_start(&trigger, vm, cfg, &err) < 0) {
		yun_error("%s", err.msg);
		vm_destroy(vm);
		free(vm);
		return EXIT_HOST_ERROR;
	}
	console_attach(con, &vm->serial);
	if (console_start(con, console_quit, vm, &err) < 0)
		yun_warn("%s (console input disabled)", err.msg);

	pthread_mutex_lock(&current_lock);
	current_vm = vm;
	pthread_mutex_unlock(&current_lock);
	vm_run(vm, &err);
	pthread_mutex_lock(&current_lock);
	current_vm = NULL;
	pthread_mutex_unlock(&current_lock);
	snap_trigger_stop(&trigger);

	status = vm->exit_status;
	switch (vm->stop_reason) {
	case VM_STOP_ERROR:
		yun_error("%s", vm->stop_msg);
		if (vm->stop_detail[0])
			fputs(vm->stop_detail, stderr);
		break;
	case VM_STOP_RESET:
		*reset = true;
		/* fall through */
	default:
		yun_info("%s (exit status %d)", vm->stop_msg, status);
		break;
	}
	vm_destroy(vm);
	free(vm);
	return status;
}

int main(int argc, char **argv)
{
	struct vmm_config cfg, restored;
	struct console_spec spec;
	struct console con = { 0 };
	struct yun_err err = { 0 };
	sigset_t term;
	bool reset;
	int status, rc;

	yun_log_init("yun-vmm", YUN_LOG_WARN);
	if (argc == 4 && !strcmp(argv[1], "--merge-snapshot")) {
		if (snap_mem_merge(argv[2], argv[3], &err) < 0) {
			yun_error("%s", err.msg);
			return EXIT_HOST_ERROR;
		}
		return 0;
	}
	config_init(&cfg);
	config_init(&restored);
	if (config_parse_args(&cfg, argc, argv, &err) < 0) {
		yun_error("%s", err.msg);
		config_free(&cfg);
		return EXIT_HOST_ERROR;
	}
	if (cfg.help || cfg.version) {
		fputs(cfg.help ? config_usage : "yun-vmm 0.1.0\n", stdout);
		config_free(&cfg);
		return 0;
	}
	if (cfg.verbose)
		yun_log_init("yun-vmm", YUN_LOG_INFO);
	the_console = &con; /* zeroed: console_abandon does nothing until it opens */
	if (config_validate(&cfg, &err) < 0 ||
	    console_parse(cfg.serial ? cfg.serial : CONFIG_DEFAULT_SERIAL, &spec, &err) < 0 ||
	    console_log_path(&spec, cfg.serial_log, &err) < 0 ||
	    setup_signals(&term, &err) < 0) {
		yun_error("%s", err.msg);
		config_free(&cfg);
		return EXIT_HOST_ERROR;
	}
	/*
	 * Under the lock the signal thread takes: a SIGTERM arriving while the
	 * socket file is being created waits, then sees its path and removes it.
	 */
	pthread_mutex_lock(&current_lock);
	rc = console_open(&con, &spec, NULL, &err);
	pthread_mutex_unlock(&current_lock);
	if (rc < 0) {
		yun_error("%s", err.msg);
		config_free(&cfg);
		return EXIT_HOST_ERROR;
	}
	if (console_pty_path(&con))
		fprintf(stderr, "yun-vmm: serial console on %s\n", console_pty_path(&con));

	if (cfg.restore.state) {
		/* From the snapshot; a reboot then boots its kernel afresh. */
		status = run_once(&cfg, &con, &restored, &reset);
		if (reset && restored.reboot)
			yun_info("rebooting");
		while (reset && restored.reboot)
			status = run_once(&restored, &con, NULL, &reset);
	} else {
		do {
			status = run_once(&cfg, &con, NULL, &reset);
			if (reset && cfg.reboot)
				yun_info("rebooting");
		} while (reset && cfg.reboot);
	}

	console_close(&con);
	config_free(&restored);
	config_free(&cfg);
	return status;
}
