/*
 * console.h - the host side of the guest's serial port: where COM1's output
 * goes and where its input comes from, chosen with
 * --serial stdio|pty|file=PATH|socket=PATH|off.
 *
 *  stdio        output to stdout, input from stdin. If stdin is a terminal
 *               it is put in raw mode (output post-processing is kept so
 *               the VMM's own diagnostics still render) and Ctrl-A x asks
 *               to quit (Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A followed by
 *               anything else sends both bytes). Otherwise stdin is read
 *               as is; its end stops input, not the VM. Output waits for
 *               a slow stdout reader like any program's output does, but a
 *               signal to the writing thread ends the wait (see
 *               console_write).
 *  pty          a new pseudo-terminal in raw mode; console_pty_path() names
 *               its /dev/pts/N for the caller to print. Output nobody reads
 *               is dropped once the pty's buffer is full.
 *  file=PATH    output to PATH (created 0600 or truncated); no input.
 *  socket=PATH  a Unix stream socket listening at PATH (a stale socket file
 *               is replaced; anything else at PATH is an error). One client
 *               at a time: a new client replaces the old one. Input comes
 *               from the client; output goes to it, is dropped while no
 *               client is connected, and waits at most
 *               CONSOLE_WRITE_TIMEOUT_MS for a slow one before dropping.
 *  off          output dropped, no input.
 *
 * With a log (--serial-log PATH, console_spec.log_path), every byte of
 * output is also appended to PATH (opened O_APPEND, created 0600) before
 * it goes to the backend, waiting for the file like file= does; so a
 * socket= console keeps its whole history in the log while no client is
 * connected, and a log shared with other appenders (the VMM's own
 * stderr) interleaves instead of overwriting.
 *
 * The vCPU side: console_write (or console_tx as a serial_tx_fn) is called
 * with the UART's lock held and never waits forever on pty or socket
 * clients. The input side: console_start runs one thread that polls the
 * input, the UART's rx-space eventfd and a stop eventfd, and pushes input
 * into the UART only as fast as the guest drains it. The console never
 * calls into the UART while holding its own lock.
 *
 * What it may touch: stdin/stdout and the terminal (stdio), the pty, file
 * or socket it opens, and the UART through serial.h.
 */
#ifndef YUN_VMM_CONSOLE_H
#define YUN_VMM_CONSOLE_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "devices/serial.h"

#define CONSOLE_WRITE_TIMEOUT_MS 100

enum console_kind {
	CONSOLE_OFF = 0,
	CONSOLE_STDIO,
	CONSOLE_PTY,
	CONSOLE_FILE,
	CONSOLE_SOCKET,
};

struct console_spec {
	enum console_kind kind;
	char path[PATH_MAX];    /* file= and socket= */
	char log_path[PATH_MAX]; /* "" none; else all output is appended here too */
};

/* Private state: use the functions below. */
struct console {
	enum console_kind kind;
	struct serial *uart;
	pthread_mutex_t lock;   /* out_fd (socket: the client) and output state */
	bool open;
	int in_fd;              /* stdin, pty master, socket client; -1 = none */
	int out_fd;             /* stdout, pty master, file, socket client; -1 = none */
	int listen_fd;          /* socket= only */
	int log_fd;             /* the log (console_spec.log_path), or -1 */
	int pty_slave;          /* held open so the master never sees a hang-up */
	int stop_fd;            /* eventfd that ends the input thread */
	bool out_stalled;       /* last bounded write timed out: drop until writable */
	bool raw_tty;           /* stdin is a terminal in raw mode: Ctrl-A escapes */
	bool escape;            /* Ctrl-A seen, waiting for the next key */
	bool in_eof;
	void (*quit)(void *ctx);
	void *quit_ctx;
	pthread_t thread;
	bool running;
	char path[PATH_MAX];    /* socket path to remove, or the pty's name */
};

/* Parse a --serial value; errors read "serial SPEC: reason". */
int console_parse(const char *spec, struct console_spec *out, struct yun_err *err);

/* Set spec's log (--serial-log; NULL: none); -EINVAL empty, -ENAMETOOLONG. */
int console_log_path(struct console_spec *spec, const char *path, struct yun_err *err);

/*
 * Open the backend; uart receives input once console_start runs (it may be
 * NULL to drop input). On failure nothing is left open.
 */
int console_open(struct console *c, const struct console_spec *spec, struct serial *uart,
		 struct yun_err *err);

/* The pty's slave path (/dev/pts/N) for the pty backend, else NULL. */
const char *console_pty_path(const struct console *c);

/*
 * Guest output. For stdio and file= it waits for the reader in poll(),
 * which any signal delivered to the calling thread interrupts (the output
 * is then dropped), so a VMM can always get its vCPU back. SIGPIPE is the
 * caller's to ignore for a stdout whose reader went away.
 */
void console_write(struct console *c, const uint8_t *buf, size_t n);

/* console_write as a serial_tx_fn: serial_init(..., console_tx, c, ...). */
void console_tx(void *ctx, const uint8_t *buf, size_t n);

/*
 * Start the input thread (none is needed for file= and off). quit (may be
 * NULL) is called from that thread when the user types Ctrl-A x on a
 * terminal; it must not call console_close.
 */
int console_start(struct console *c, void (*quit)(void *ctx), void *quit_ctx,
		  struct yun_err *err);

/*
 * Stop and join the input thread (if running), keeping everything open;
 * console_start starts it again. Negative errno if it cannot be stopped.
 */
int console_stop_input(struct console *c);

/*
 * Point the console's input at another UART (a rebooted VM's). Stops the
 * input thread first; call console_start afterwards.
 */
void console_attach(struct console *c, struct serial *uart);

/*
 * Stop and join the input thread, close everything, restore the terminal
 * and remove the socket file. Call it once the vCPUs no longer write.
 * Safe on a console that failed to open or was already closed.
 */
void console_close(struct console *c);

/*
 * For a process about to _exit() without console_close (a signal before
 * the VM runs): remove the socket file and restore the terminal. Touches
 * no thread or lock.
 */
void console_abandon(struct console *c);

/*
 * Put the terminal back as it was before raw mode. Async-signal-safe: a
 * fatal-signal handler may call it. Also registered with atexit().
 */
void console_restore_terminal(void);

#endif
