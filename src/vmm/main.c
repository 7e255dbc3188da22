/*
 * main.c - yun-vmm: one process = one microVM.
 *
 * Parses the configuration, opens the console, then hands over to the
 * controller (control.h), which builds and runs the VM until the guest ends
 * it; with --reboot a guest reset builds a fresh VM in the same process
 * (same console). With --api-sock the control API (api/server.h) serves
 * the controller meanwhile, and without --kernel the VM waits to be
 * configured and started through it. Signals SIGTERM/SIGINT/SIGHUP stop
 * the VM with status 128 + signal.
 *
 * With --migrate-listen the VM arrives by live migration instead: the
 * listener is bound before the API socket appears (so a caller that sees
 * the socket may start the migration), the controller receives the VM and
 * runs it. Exit statuses: the guest's as always; 1 when the VM could not be
 * built or received (an incoming migration that fails: the source keeps the
 * guest); 0 on a source whose guest migrated away (PUT /migrate).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "api/server.h"
#include "config.h"
#include "console.h"
#include "control.h"
#include "migrate/engine.h"
#include "sandbox/seccomp.h"
#include "snapshot/snapshot.h"
#include "vcpu.h"

#define EXIT_HOST_ERROR 1

static struct ctl *the_ctl;
static struct console *the_console;
static const char *the_api_sock;
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
	struct yun_err err;
	int sig;

	if (sandbox_enter(SANDBOX_MAIN, &err) < 0)
		yun_error("%s", err.msg);
	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		pthread_mutex_lock(&current_lock);
		if (!the_ctl || !ctl_stop_by_signal(the_ctl, sig)) {
			/* No VM to stop yet (or any more): leave nothing behind and go. */
			if (the_console)
				console_abandon(the_console);
			else
				console_restore_terminal();
			if (the_api_sock)
				unlink(the_api_sock);
			_exit(128 + sig);
		}
		pthread_mutex_unlock(&current_lock);
	}
	return NULL;
}

/* The per-migration token: the file's first line, at least 16 characters. */
static int read_token(const char *path, char *out, size_t n, struct yun_err *err)
{
	FILE *f = fopen(path, "re");
	size_t len;

	if (!f)
		return yun_err_errno(err, errno, "--migrate-token-file %s", path);
	if (!fgets(out, (int)n, f))
		out[0] = '\0';
	fclose(f);
	len = strcspn(out, "\r\n");
	out[len] = '\0';
	if (len < 16)
		return yun_err_set(err, EINVAL, "--migrate-token-file %s: the token must be at least "
				   "16 characters on the first line", path);
	return 0;
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

int main(int argc, char **argv)
{
	struct vmm_config cfg;
	struct console_spec spec;
	struct console con = { 0 };
	struct yun_err err = { 0 };
	struct ctl *ctl = NULL;
	struct api_server *api = NULL;
	sigset_t term;
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
	    sandbox_set_mode(cfg.seccomp ? SANDBOX_ON : SANDBOX_OFF, cfg.reboot, &err) < 0 ||
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

	rc = ctl_create(&ctl, &cfg, &con, &err);
	if (!rc && cfg.migrate_listen) {
		char token[512];

		rc = read_token(cfg.migrate_token_file, token, sizeof(token), &err);
		if (!rc)
			rc = migrate_listen(cfg.migrate_listen, &err);
		if (rc >= 0) {
			ctl_set_migrate_in(ctl, rc, token, &cfg.migrate_override);
			rc = 0;
		}
		explicit_bzero(token, sizeof(token));
	}
	if (!rc && cfg.api_sock) {
		/* Under the lock: a SIGTERM now waits, then removes the socket file. */
		pthread_mutex_lock(&current_lock);
		rc = api_server_start(&api, cfg.api_sock, ctl, cfg.verbose, &err);
		if (!rc)
			the_api_sock = cfg.api_sock;
		pthread_mutex_unlock(&current_lock);
	}
	if (rc) {
		yun_error("%s", err.msg);
		ctl_destroy(ctl);
		console_close(&con);
		config_free(&cfg);
		return EXIT_HOST_ERROR;
	}
	pthread_mutex_lock(&current_lock);
	the_ctl = ctl;
	pthread_mutex_unlock(&current_lock);

	status = ctl_run(ctl);

	/* The VM is gone: the API goes with it (the socket file too), then the rest. */
	pthread_mutex_lock(&current_lock);
	api_server_stop(api);
	the_api_sock = NULL;
	pthread_mutex_unlock(&current_lock);
	console_close(&con);
	pthread_mutex_lock(&current_lock);
	the_ctl = NULL;
	pthread_mutex_unlock(&current_lock);
	ctl_destroy(ctl);
	config_free(&cfg);
	return status;
}
