/* SPDX-License-Identifier: MIT */
/*
 * The generator's item records and file requests: the record (ndx, item
 * flags, basis type, xname), then the sum head and block sums of the basis
 * (rsync-protocol.md §8.4-§8.5); an item that is already right.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_sys.h"
#include "engine/session/session_xattr.h"
#include "engine/session/session_gen_int.h"

bool berth__gen_record_wanted(struct berth_session *s, uint32_t iflags)
{
	if (iflags & ~(BERTH_ITEM_BASIS_TYPE_FOLLOWS |
		       BERTH_ITEM_XNAME_FOLLOWS | BERTH_ITEM_LOCAL_CHANGE))
		return true;
	if (s->opts.verbose >= 2)
		return true;
	return s->opts.log_format && strstr(s->opts.log_format, "%i%I");
}

/*
 * ndx + iflags [+ basis type] (the caller adds a sum head for transfers).
 * Before protocol 29 there are no item flags: a transfer is its ndx alone
 * and nothing else is sent.
 */
static int put_record_b(struct berth_session *s, int32_t ndx, uint32_t iflags,
			int btype)
{
	uint8_t buf[REC_MAX];
	struct berth_proto_out po = {buf, sizeof(buf), 0};
	int ret;

	if (s->neg.proto < 29)
		return iflags & BERTH_ITEM_TRANSFER
			       ? berth__gen_put_ndx(s,
						    berth__ndx_to_wire(s, ndx))
			       : 0;
	ret = berth_proto_put_ndx(&po, &s->out.ndx, berth__ndx_to_wire(s, ndx));
	if (ret >= 0)
		ret = berth_proto_put_shortint(&po, (uint16_t)iflags);
	if (ret >= 0 && (iflags & BERTH_ITEM_BASIS_TYPE_FOLLOWS))
		ret = berth_proto_put_u8(&po, (uint8_t)btype);
	if (ret < 0)
		return ret;
	ret = berth__out_data(&s->out, buf, po.pos);
	return ret < 0 ? ret : berth__xa_gen_request(s, ndx, iflags);
}

int berth__gen_put_record(struct berth_session *s, int32_t ndx, uint32_t iflags)
{
	return put_record_b(s, ndx, iflags, 0);
}

/*
 * A hard-link record ("hf"): LOCAL_CHANGE | XNAME_FOLLOWS, and IS_NEW with
 * the name of the entry it is linked to; @to NULL: an existing link that
 * was already right (an empty xname, shown at -ii).
 */
int berth__gen_put_link_record(struct berth_session *s, int32_t ndx,
			       const struct berth_file *to)
{
	uint8_t buf[REC_MAX + 8192];
	char tpath[BERTH_PATH_BUF];
	struct berth_proto_out po = {buf, sizeof(buf), 0};
	uint32_t iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_XNAME_FOLLOWS;
	const char *tname;
	int ret;

	if (s->neg.proto < 29)
		return 0; /* no item records */
	tname = to ? berth_file_path(to, tpath) : "";
	/* -X: a new link is new (a linked-to match has the same xattrs). */
	if (to)
		iflags |= BERTH_ITEM_IS_NEW |
			  berth__xa_gen_itemize(s, berth__file(s, ndx), -1,
						NULL);
	ret = berth_proto_put_ndx(&po, &s->out.ndx, berth__ndx_to_wire(s, ndx));
	if (ret >= 0)
		ret = berth_proto_put_shortint(&po, (uint16_t)iflags);
	if (ret >= 0)
		ret = berth_proto_put_vstring(&po, tname, strlen(tname));
	if (ret >= 0)
		ret = berth__out_data(&s->out, buf, po.pos);
	return ret < 0 ? ret : berth__xa_gen_request(s, ndx, iflags);
}

int berth__gen_put_del_stats(struct berth_session *s)
{
	uint8_t buf[64];
	struct berth_proto_out po = {buf, sizeof(buf), 0};
	int ret = berth_del_stats_put(&po, &s->out.ndx, s->neg.proto,
				      &s->del.stats);

	return ret < 0 ? ret : berth__out_data(&s->out, buf, po.pos);
}

int berth__gen_put_ndx(struct berth_session *s, int32_t ndx)
{
	uint8_t buf[8];
	struct berth_proto_out po = {buf, sizeof(buf), 0};
	int ret = berth_proto_put_ndx(&po, &s->out.ndx, ndx);

	return ret < 0 ? ret : berth__out_data(&s->out, buf, po.pos);
}

static int emit_sums(void *arg, const void *buf, size_t len)
{
	struct berth_session *s = arg;

	return berth__out_data(&s->out, buf, len);
}

/*
 * Ask for file @ndx: record, then the sum head and block sums of the
 * destination as basis (or an empty head).
 */
int berth__gen_request_file_at(struct gen *g, int32_t ndx, uint32_t iflags,
			       int basis_dir, const char *bname, int btype,
			       bool redo)
{
	struct berth_session *s = g->s;
	const struct berth_file *f = berth__file(s, ndx);
	char fpath[BERTH_PATH_BUF];
	struct berth_sum_head head;
	uint8_t zero[BERTH_SUM_HEAD_WIRE] = {0};
	struct file_state *st_;
	struct stat st;
	int ret, fd = -1;

	/* --backup-dir: the old file will move there when the new one is
	 * committed. */
	if (s->opts.backup_dir) {
		ret = berth__fst_get(s, ndx).exists;
		if (ret)
			ret = berth__backup_prepare(s,
						    berth_file_path(f, fpath));
		if (ret < 0)
			return ret;
	}
	/* Open the basis first: the receiver must know whether sums were
	 * sent before the sender can answer the record. */
	if (btype != -1)
		iflags |= BERTH_ITEM_BASIS_TYPE_FOLLOWS;
	if (basis_dir >= 0 && !s->opts.whole_file && !s->opts.dry_run) {
		fd = berth__sys_open_read(s, basis_dir,
					  bname ? bname
						: berth_file_path(f, fpath));
		if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
				st.st_size == 0)) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0) {
		ret = berth_sum_head_init(&head, (uint64_t)st.st_size,
					  s->neg.proto, s->neg.cp.type,
					  (uint32_t)s->opts.block_size, redo);
		if (ret < 0) {
			close(fd);
			fd = -1;
			if (ret != -BERTH_ELIMIT)
				return ret;
		}
	}
	pthread_mutex_lock(&s->sync.lock);
	berth__fst_requested(s, ndx);
	st_ = berth__fst_of(s, ndx);
	st_->attempts++;
	st_->had_basis = fd >= 0;
	st_->iflags = (uint16_t)iflags;
	st_->basis_type = (int8_t)btype;
	st_->appended = 0;
	pthread_mutex_unlock(&s->sync.lock);
	ret = put_record_b(s, ndx, iflags,
			   btype == BASIS_PARTIAL ? BERTH_FNAMECMP_PARTIAL_DIR
						  : btype);
	if (ret < 0 || s->opts.dry_run) {
		if (fd >= 0)
			close(fd);
		return ret; /* §8.4: no sum head in a dry run */
	}

	if (fd < 0)
		return berth__out_data(&s->out, zero, sizeof(zero));
	ret = berth_sig_file(s->stg.sig, fd, &head, &s->neg.cp, emit_sums, s);
	close(fd);
	if (ret < 0) {
		/* The head is out, the sums are cut short: the stream cannot
		 * go on (the client would wait for the rest). */
		berth__session_fatal(
			s, RERR_FILEIO, "%s: reading the basis failed: %s\n",
			berth_file_path(f, fpath), berth_strerror(ret));
		return -BERTH_ECANCELLED;
	}
	return 0;
}

int berth__gen_request_file(struct gen *g, int32_t ndx, uint32_t iflags,
			    int basis_dir, int btype, bool redo)
{
	return berth__gen_request_file_at(g, ndx, iflags, basis_dir, NULL,
					  btype, redo);
}

/*
 * An existing non-directory that stays: fix what its attributes lack
 * (@iflags from berth__gen_itemize()), and say so when there is something to say.
 */
int berth__gen_keep_item(struct berth_session *s, int32_t ndx,
			 const struct berth_file *f, const struct stat *st,
			 uint32_t iflags)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_commit_meta m;
	int ret;

	/* Already what the sender has: safe for --remove-source-files. */
	berth__session_success(s, ndx);

	/* -U -c: rsync sets the times of a file it read for its checksum
	 * whatever they were (ATTRS_ACCURATE_TIME): the read may have
	 * moved the atime. */
	if ((iflags & (BERTH_ITEM_REPORT_TIME | BERTH_ITEM_REPORT_PERMS |
		       BERTH_ITEM_REPORT_OWNER | BERTH_ITEM_REPORT_GROUP |
		       BERTH_ITEM_REPORT_ACL | BERTH_ITEM_REPORT_ATIME) ||
	     berth__dmn_mode_due(s, f, st->st_mode) ||
	     (s->opts.atimes && s->opts.checksum && S_ISREG(f->mode))) &&
	    !s->opts.dry_run) {
		berth__session_meta(s, f, true, st->st_mode, &m);
		ret = berth_commit_set_meta(s->stg.commit, fname, &m);
		if (ret < 0)
			return ret;
	}
	return berth__gen_record_wanted(s, iflags)
		       ? berth__gen_put_record(s, ndx, iflags)
		       : 0;
}
