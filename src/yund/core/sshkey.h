/*
 * sshkey.h - the SSH public keys an instance is given: one line each in
 * OpenSSH's authorized_keys form `<type> <base64> [comment]`, checked
 * before they are stored.
 */
#ifndef YUND_CORE_SSHKEY_H
#define YUND_CORE_SSHKEY_H

#include <stdbool.h>
#include <stddef.h>

#define SSHKEY_MAX     16   /* keys per instance */
#define SSHKEY_LEN_MAX 8192 /* bytes per key line */

/*
 * Whether `line` is a public key line: no control characters (so no
 * newline) and at most SSHKEY_LEN_MAX bytes; a known type
 * (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521,
 * sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com);
 * then one space or more and valid base64 (padding included) whose
 * decoded key blob starts with the same type name, as the SSH wire
 * format has it; then optionally a space and a comment. When not,
 * `why` gets the reason (e.g. "key type \"ssh-dss\" is not one of ...").
 */
bool sshkey_valid(const char *line, char *why, size_t len);

#endif
