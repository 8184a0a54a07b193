/*
 * A tiny JSON reader and writer for the agent's protocol lines: enough JSON for one request per line
 * (objects, arrays, strings, integers, booleans, null) and for building one response. Integer-only on
 * purpose: the agent never touches floating point (see kvmspec-agent.c).
 */
#ifndef KVMSPEC_JSON_H
#define KVMSPEC_JSON_H

#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_BOOL, JSON_INT, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	const char *key;    /* member name when inside an object */
	const char *string; /* JSON_STRING: unescaped, NUL-terminated (points into the parsed line) */
	size_t length;      /* JSON_STRING: bytes in string */
	long long integer;  /* JSON_INT, JSON_BOOL */
	struct json *child; /* JSON_ARRAY / JSON_OBJECT: first element */
	struct json *next;  /* next sibling */
};

/* Parses one line in place (strings are unescaped into it). Returns NULL and sets *error on bad input. */
struct json *json_parse(char *text, const char **error);
void json_free(struct json *value);
/* The member `key` of an object, or NULL. */
const struct json *json_member(const struct json *object, const char *key);

/* A growing output line. */
struct json_out {
	char *data;
	size_t length, capacity;
};

void out_raw(struct json_out *out, const char *text);
void out_string(struct json_out *out, const char *text);
void out_int(struct json_out *out, long long value);
void out_base64(struct json_out *out, const uint8_t *bytes, size_t length);

/* Decodes standard base64; returns a malloc'd buffer (length in *length) or NULL on bad input. */
uint8_t *base64_decode(const char *text, size_t text_length, size_t *length);

#endif
