/* SPDX-License-Identifier: MIT */
/*
 * The xattr exchange of an item record (§8.3, §9.1): the generator's
 * request for abbreviated values, and the sender's answer, decoded one
 * value at a time.
 */
#include <errno.h>
#include <stdlib.h>

#include "protocol/proto_int.h"

int berth_xattr_req_put(struct berth_proto_out *out, const uint32_t *nums,
			uint32_t n)
{
	size_t start = out->pos;
	uint32_t prev = 0;
	int r = 0;

	for (uint32_t i = 0; !r && i < n; i++) {
		if (nums[i] <= prev || nums[i] > INT32_MAX) {
			r = -EINVAL;
			break;
		}
		r = berth_proto_put_varint(out, (int32_t)(nums[i] - prev));
		prev = nums[i];
	}
	if (!r)
		r = berth_proto_put_u8(out, 0);
	if (r)
		out->pos = start;
	return r;
}

int berth_xattr_val_dec_init(struct berth_xattr_val_dec *d, size_t max_value,
			     size_t max_total)
{
	memset(d, 0, sizeof(*d));
	if (!max_value || max_value > INT32_MAX)
		return -EINVAL;
	d->max_value = max_value;
	d->max_total = max_total;
	/* Two varints and one whole value. */
	d->stash.cap = 10 + max_value;
	d->stash.buf = malloc(d->stash.cap);
	return d->stash.buf ? 0 : -ENOMEM;
}

void berth_xattr_val_dec_destroy(struct berth_xattr_val_dec *d)
{
	free(d->stash.buf);
	d->stash.buf = NULL;
}

void berth_xattr_val_dec_begin(struct berth_xattr_val_dec *d)
{
	d->num = 0;
	d->total = 0;
	d->stash.len = 0;
}

static int unit_val(void *ctx, struct berth_proto_in *v)
{
	struct berth_xattr_val_dec *d = ctx;
	struct berth_xattr_val *ev = d->out;
	int32_t rel, len;

	GET(berth_proto_get_varint(v, &rel));
	if (rel == 0)
		return BERTH_PROTO_DONE;
	/* Numbers only go up (the sender answers in its list order). */
	if (rel < 0 || (uint64_t)d->num + (uint32_t)rel > INT32_MAX)
		return -BERTH_EPROTO;
	GET(berth_proto_get_varint(v, &len));
	if (len < 0)
		return -BERTH_EPROTO;
	if ((size_t)len > d->max_value ||
	    (d->max_total && (size_t)len > d->max_total - d->total))
		return -BERTH_ELIMIT;
	if (in_avail(v) < (size_t)len)
		return BERTH_PROTO_MORE;
	d->num += (uint32_t)rel;
	d->total += (size_t)len;
	ev->num = d->num;
	ev->len = (uint32_t)len;
	ev->ptr = v->ptr + v->pos;
	v->pos += (size_t)len;
	return BERTH_XATTR_VAL;
}

int berth_xattr_val_decode(struct berth_xattr_val_dec *d,
			   struct berth_proto_in *in,
			   struct berth_xattr_val *ev)
{
	d->out = ev;
	return berth__stash_run(&d->stash, in, unit_val, d);
}
