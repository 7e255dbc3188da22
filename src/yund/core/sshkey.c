/* sshkey.c - see sshkey.h. */
#include "sshkey.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const types[] = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
};

#define TYPES_TEXT                                                                                 \
	"ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, "          \
	"sk-ecdsa-sha2-nistp256@openssh.com"

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode n base64 characters (n a multiple of 4, '=' only as the last one
 * or two) into out (room for n / 4 * 3); the decoded length, or -1.
 */
static long b64_decode(const char *s, size_t n, unsigned char *out)
{
	size_t o = 0;

	if (n == 0 || n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;

		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=') {
				/* only in the last quantum, only at positions 2 and 3 */
				if (i + 4 != n || k < 2 || (k == 2 && s[i + 3] != '='))
					return -1;
				v[k] = 0;
				pad++;
			} else {
				v[k] = b64_value((unsigned char)s[i + k]);
				if (v[k] < 0)
					return -1;
			}
		}
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	return (long)o;
}

bool sshkey_valid(const char *line, char *why, size_t len)
{
	size_t n = strlen(line), tlen, blen;
	const char *type = NULL, *b64, *p;
	unsigned char *blob;
	long dlen;
	bool ok;

	if (n == 0) {
		snprintf(why, len, "empty");
		return false;
	}
	if (n > SSHKEY_LEN_MAX) {
		snprintf(why, len, "%zu bytes; a key line has at most %d", n, SSHKEY_LEN_MAX);
		return false;
	}
	for (p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(why, len,
				 "control character 0x%02x at byte %zu (one line per key)",
				 (unsigned char)*p, (size_t)(p - line));
			return false;
		}
	tlen = strcspn(line, " ");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strlen(types[i]) == tlen && !memcmp(types[i], line, tlen))
			type = types[i];
	if (!type) {
		snprintf(why, len, "key type \"%.*s\" is not one of " TYPES_TEXT,
			 (int)(tlen > 40 ? 40 : tlen), line);
		return false;
	}
	b64 = line + tlen;
	while (*b64 == ' ')
		b64++;
	blen = strcspn(b64, " ");
	if (blen == 0) {
		snprintf(why, len, "no base64 key after the type");
		return false;
	}
	blob = malloc(blen / 4 * 3 + 3);
	if (!blob) {
		snprintf(why, len, "out of memory");
		return false;
	}
	dlen = b64_decode(b64, blen, blob);
	if (dlen < 0) {
		snprintf(why, len, "the key is not valid base64");
		free(blob);
		return false;
	}
	/* The blob: uint32 big-endian length, then the type name again. */
	ok = dlen >= 4 + (long)tlen &&
	     ((uint32_t)blob[0] << 24 | (uint32_t)blob[1] << 16 | (uint32_t)blob[2] << 8 |
	      blob[3]) == tlen &&
	     !memcmp(blob + 4, type, tlen);
	free(blob);
	if (!ok) {
		snprintf(why, len, "the key data is not a %s key", type);
		return false;
	}
	return true;
}
