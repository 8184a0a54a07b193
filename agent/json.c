#include "json.h"

#include <stdlib.h>
#include <string.h>

struct parser {
	char *p;
	const char *error;
};

static void skip_space(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n')
		ps->p++;
}

static struct json *new_value(enum json_type type)
{
	struct json *v = calloc(1, sizeof(*v));
	if (v)
		v->type = type;
	return v;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Unescapes a string in place; the result is never longer than its escaped form. */
static char *parse_string(struct parser *ps, size_t *length)
{
	char *start = ++ps->p, *w = start;
	while (*ps->p != '"') {
		char c = *ps->p++;
		if (c == '\0') {
			ps->error = "unterminated string";
			return NULL;
		}
		if (c != '\\') {
			*w++ = c;
			continue;
		}
		c = *ps->p++;
		switch (c) {
		case '"': case '\\': case '/': *w++ = c; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u': {
			unsigned code = 0;
			for (int i = 0; i < 4; i++) {
				int d = hex_digit(ps->p[i]);
				if (d < 0) {
					ps->error = "bad \\u escape";
					return NULL;
				}
				code = code * 16 + (unsigned)d;
			}
			ps->p += 4;
			/* UTF-8 for the basic plane; paths and messages never need surrogate pairs. */
			if (code < 0x80) {
				*w++ = (char)code;
			} else if (code < 0x800) {
				*w++ = (char)(0xc0 | (code >> 6));
				*w++ = (char)(0x80 | (code & 0x3f));
			} else {
				*w++ = (char)(0xe0 | (code >> 12));
				*w++ = (char)(0x80 | ((code >> 6) & 0x3f));
				*w++ = (char)(0x80 | (code & 0x3f));
			}
			break;
		}
		default:
			ps->error = "bad escape";
			return NULL;
		}
	}
	ps->p++;
	*length = (size_t)(w - start);
	*w = '\0';
	return start;
}

static struct json *parse_value(struct parser *ps, int depth);

static struct json *parse_container(struct parser *ps, int depth, int object)
{
	struct json *v = new_value(object ? JSON_OBJECT : JSON_ARRAY), **tail;
	char close = object ? '}' : ']';
	if (!v) {
		ps->error = "out of memory";
		return NULL;
	}
	tail = &v->child;
	ps->p++;
	skip_space(ps);
	if (*ps->p == close) {
		ps->p++;
		return v;
	}
	for (;;) {
		const char *key = NULL;
		struct json *item;
		skip_space(ps);
		if (object) {
			size_t key_length;
			if (*ps->p != '"') {
				ps->error = "expected a member name";
				break;
			}
			key = parse_string(ps, &key_length);
			if (!key)
				break;
			skip_space(ps);
			if (*ps->p++ != ':') {
				ps->error = "expected ':'";
				break;
			}
		}
		item = parse_value(ps, depth + 1);
		if (!item)
			break;
		item->key = key;
		*tail = item;
		tail = &item->next;
		skip_space(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == close) {
			ps->p++;
			return v;
		}
		ps->error = "expected ',' or a closing bracket";
		break;
	}
	json_free(v);
	return NULL;
}

static struct json *parse_value(struct parser *ps, int depth)
{
	struct json *v;
	if (depth > 32) {
		ps->error = "nested too deeply";
		return NULL;
	}
	skip_space(ps);
	switch (*ps->p) {
	case '{':
		return parse_container(ps, depth, 1);
	case '[':
		return parse_container(ps, depth, 0);
	case '"': {
		size_t length;
		char *s = parse_string(ps, &length);
		if (!s)
			return NULL;
		v = new_value(JSON_STRING);
		if (v) {
			v->string = s;
			v->length = length;
		}
		break;
	}
	case 't':
	case 'f':
	case 'n': {
		static const struct { const char *word; enum json_type type; int value; } words[] = {
			{ "true", JSON_BOOL, 1 }, { "false", JSON_BOOL, 0 }, { "null", JSON_NULL, 0 },
		};
		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
			size_t n = strlen(words[i].word);
			if (strncmp(ps->p, words[i].word, n) == 0) {
				ps->p += n;
				v = new_value(words[i].type);
				if (v)
					v->integer = words[i].value;
				goto done;
			}
		}
		ps->error = "unexpected word";
		return NULL;
	}
	default: {
		char *end;
		long long n = strtoll(ps->p, &end, 10);
		if (end == ps->p || *end == '.' || *end == 'e' || *end == 'E') {
			ps->error = "expected a value (numbers must be integers)";
			return NULL;
		}
		ps->p = end;
		v = new_value(JSON_INT);
		if (v)
			v->integer = n;
	}
	}
done:
	if (!v)
		ps->error = "out of memory";
	return v;
}

struct json *json_parse(char *text, const char **error)
{
	struct parser ps = { text, NULL };
	struct json *v = parse_value(&ps, 0);
	if (v) {
		skip_space(&ps);
		if (*ps.p != '\0') {
			ps.error = "trailing characters";
			json_free(v);
			v = NULL;
		}
	}
	*error = ps.error;
	return v;
}

void json_free(struct json *value)
{
	while (value) {
		struct json *next = value->next;
		json_free(value->child);
		free(value);
		value = next;
	}
}

const struct json *json_member(const struct json *object, const char *key)
{
	if (!object || object->type != JSON_OBJECT)
		return NULL;
	for (const struct json *m = object->child; m; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

static void reserve(struct json_out *out, size_t extra)
{
	if (out->length + extra + 1 <= out->capacity)
		return;
	size_t capacity = out->capacity ? out->capacity : 256;
	while (capacity < out->length + extra + 1)
		capacity *= 2;
	out->data = realloc(out->data, capacity);
	if (!out->data)
		abort(); /* the protocol cannot report a failure to write its own answer */
	out->capacity = capacity;
}

static void out_bytes(struct json_out *out, const char *bytes, size_t length)
{
	reserve(out, length);
	memcpy(out->data + out->length, bytes, length);
	out->length += length;
	out->data[out->length] = '\0';
}

void out_raw(struct json_out *out, const char *text)
{
	out_bytes(out, text, strlen(text));
}

void out_string(struct json_out *out, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	out_raw(out, "\"");
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char escaped[2] = { '\\', (char)*p };
			out_bytes(out, escaped, 2);
		} else if (*p < 0x20) {
			char escaped[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
			out_bytes(out, escaped, 6);
		} else {
			out_bytes(out, (const char *)p, 1);
		}
	}
	out_raw(out, "\"");
}

void out_int(struct json_out *out, long long value)
{
	char digits[24], *p = digits + sizeof(digits);
	unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
	do {
		*--p = (char)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude);
	if (value < 0)
		*--p = '-';
	out_bytes(out, p, (size_t)(digits + sizeof(digits) - p));
}

static const char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void out_base64(struct json_out *out, const uint8_t *bytes, size_t length)
{
	reserve(out, (length + 2) / 3 * 4 + 2);
	char *w = out->data + out->length;
	*w++ = '"';
	for (size_t i = 0; i < length; i += 3) {
		uint32_t chunk = (uint32_t)bytes[i] << 16;
		if (i + 1 < length)
			chunk |= (uint32_t)bytes[i + 1] << 8;
		if (i + 2 < length)
			chunk |= bytes[i + 2];
		*w++ = base64_alphabet[(chunk >> 18) & 63];
		*w++ = base64_alphabet[(chunk >> 12) & 63];
		*w++ = i + 1 < length ? base64_alphabet[(chunk >> 6) & 63] : '=';
		*w++ = i + 2 < length ? base64_alphabet[chunk & 63] : '=';
	}
	*w++ = '"';
	out->length = (size_t)(w - out->data);
	out->data[out->length] = '\0';
}

uint8_t *base64_decode(const char *text, size_t text_length, size_t *length)
{
	uint8_t *bytes;
	size_t n = 0;
	uint32_t chunk = 0;
	int bits = 0;
	if (text_length % 4 != 0)
		return NULL;
	bytes = malloc(text_length / 4 * 3 + 1);
	if (!bytes)
		return NULL;
	for (size_t i = 0; i < text_length; i++) {
		const char *at;
		if (text[i] == '=') {
			if (i + 2 < text_length || (i + 1 < text_length && text[i + 1] != '='))
				goto bad;
			break;
		}
		at = text[i] ? strchr(base64_alphabet, text[i]) : NULL;
		if (!at)
			goto bad;
		chunk = chunk << 6 | (uint32_t)(at - base64_alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			bytes[n++] = (uint8_t)(chunk >> bits);
		}
	}
	*length = n;
	return bytes;
bad:
	free(bytes);
	return NULL;
}
