package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// This file reads bbolt's on-disk structures itself, through ReadAt and
// with every offset bounds-checked, so that a damaged or foreign file is
// described and refused instead of reaching bbolt, which maps the file and
// trusts it (a bad page is a panic there, or a fault past the end of the
// file, which no recover catches). The layout is bbolt's file format,
// version 2 (go.etcd.io/bbolt/internal/common).

const (
	boltMagic   = 0xED0CDAED
	boltVersion = 2

	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	elementSize    = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	metaOffset     = pageHeaderSize
	metaSize       = 64 // magic, version, pageSize, flags u32; root, seq, freelist, pgid, txid, checksum u64
	bucketHeader   = 16 // root pgid u64, sequence u64

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10
	leafBucket   = 0x01

	noFreelist = ^uint64(0)
	// maxDepth bounds the tree walk; a real tree of this package is a few
	// levels deep.
	maxDepth = 64
)

// bbolt writes its structures in the machine's byte order.
var le = binary.NativeEndian

// boltMeta is a decoded meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // the high-water mark: pages [0, pgid) are in use or free
	txid     uint64
}

// metaState is what a meta page holds: nothing bbolt's, bbolt's magic but
// a bad version or checksum, or a valid meta.
type metaState int

const (
	metaForeign metaState = iota
	metaBad
	metaValid
)

// parseMeta decodes the meta page that starts at p (at least
// metaOffset+metaSize bytes, or it is foreign).
func parseMeta(p []byte) (boltMeta, metaState) {
	if len(p) < metaOffset+metaSize {
		return boltMeta{}, metaForeign
	}
	m := p[metaOffset : metaOffset+metaSize]
	if le.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, metaForeign
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if le.Uint32(m[4:]) != boltVersion || le.Uint64(m[56:]) != h.Sum64() {
		return boltMeta{}, metaBad
	}
	return boltMeta{
		pageSize: le.Uint32(m[8:]),
		root:     le.Uint64(m[16:]),
		freelist: le.Uint64(m[32:]),
		pgid:     le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}, metaValid
}

// fileCheck walks one data file.
type fileCheck struct {
	f        *os.File
	size     int64
	ps       int64
	m        boltMeta
	used     []bool // pages reached from the tree, the metas or the free list
	free     []bool // pages on the free list
	freeSync bool   // the free list is stored (not rebuilt by bbolt at open)
}

// inspect checks the structure of the bbolt file at path and returns a
// *FileError (op names the caller) describing what makes it unusable, an
// error of the operating system, or nil. It reads every page the tree
// reaches: a data file of 100,000 secrets (180 MB) takes 0.15 to 0.3 s.
// It must run while no process writes the file.
func inspect(path, op string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, path, err)
	}
	bad := func(p Problem, format string, args ...any) error {
		return &FileError{Op: op, Path: path, Problem: p, Detail: fmt.Sprintf(format, args...)}
	}
	size := fi.Size()
	if size == 0 {
		return bad(FileEmpty, "0 bytes")
	}
	c := &fileCheck{f: f, size: size}

	// The first meta page gives the page size; bbolt also finds the second
	// one by trying the page sizes it supports.
	head := make([]byte, min(size, 4096))
	if _, err := f.ReadAt(head, 0); err != nil && err != io.EOF {
		return fmt.Errorf("%s %s: %w", op, path, err)
	}
	m0, s0 := parseMeta(head)
	var m1 boltMeta
	s1 := metaForeign
	for _, ps := range []int64{int64(m0.pageSize), 1024, 2048, 4096, 8192, 16384, 32768, 65536} {
		if ps == 0 || (s0 == metaValid && ps != int64(m0.pageSize)) {
			continue
		}
		b := make([]byte, metaOffset+metaSize)
		if n, _ := f.ReadAt(b, ps); n < len(b) {
			continue
		}
		if m, s := parseMeta(b); s > s1 {
			m1, s1 = m, s
			if s == metaValid {
				break
			}
		}
	}
	if s0 != metaValid && s1 != metaValid {
		switch {
		case s0 == metaBad || s1 == metaBad:
			return bad(FileDamaged, "both of its meta pages are invalid")
		case len(head) >= metaOffset+4 && le.Uint32(head[metaOffset:]) == boltMagic:
			return bad(FileTruncated, "%d bytes, shorter than its first page", size)
		case size < metaOffset+metaSize:
			return bad(FileForeign, "%d bytes, too short for one, and no bbolt header", size)
		}
		return bad(FileForeign, "it is not a bbolt database")
	}
	c.m = m0
	if s0 != metaValid || (s1 == metaValid && m1.txid > m0.txid) {
		c.m = m1
	}
	ps := int64(c.m.pageSize)
	if ps < 1024 || ps > 1<<16 || ps&(ps-1) != 0 {
		return bad(FileDamaged, "its meta page gives a page size of %d bytes", ps)
	}
	c.ps = ps
	if size < 2*ps {
		return bad(FileTruncated, "%d bytes, shorter than its two meta pages of %d", size, 2*ps)
	}
	hwm := c.m.pgid
	if hwm < 3 || hwm > uint64(1<<40) {
		return bad(FileDamaged, "its meta page counts %d pages", hwm)
	}
	if need := int64(hwm) * ps; size < need {
		return bad(FileTruncated, "%d bytes, but its pages need %d", size, need)
	}
	if c.m.root < 2 || c.m.root >= hwm {
		return bad(FileDamaged, "its root page %d is outside its %d pages", c.m.root, hwm)
	}
	c.used = make([]bool, hwm)
	c.free = make([]bool, hwm)
	c.used[0], c.used[1] = true, true

	if err := c.checkFreelist(); err != nil {
		return bad(FileDamaged, "%v", err)
	}
	if err := c.walk(c.m.root, nil, nil, 0); err != nil {
		var pe pageError
		if errors.As(err, &pe) {
			return bad(FileDamaged, "%v", err)
		}
		return fmt.Errorf("%s %s: %w", op, path, err)
	}
	if c.freeSync {
		for id := uint64(2); id < hwm; id++ {
			if !c.used[id] && !c.free[id] {
				return bad(FileDamaged, "page %d is neither in use nor free", id)
			}
		}
	}
	return nil
}

// pageError is damage found by the walk (other errors are I/O failures).
type pageError struct{ msg string }

func (e pageError) Error() string { return e.msg }

func damaged(format string, args ...any) error { return pageError{fmt.Sprintf(format, args...)} }

// readPage reads page id with its overflow pages, after checking that its
// header names it, has a known type, and fits below the high-water mark.
func (c *fileCheck) readPage(id uint64, want uint16) ([]byte, error) {
	var h [pageHeaderSize]byte
	if _, err := c.f.ReadAt(h[:], int64(id)*c.ps); err != nil {
		return nil, err
	}
	gotID, flags, overflow := le.Uint64(h[0:]), le.Uint16(h[8:]), uint64(le.Uint32(h[12:]))
	switch {
	case want == flagFreelist && gotID != id:
		return nil, damaged("its free list (page %d) is overwritten", id)
	case gotID != id:
		return nil, damaged("page %d is overwritten: its header names page %d", id, gotID)
	case want == flagFreelist && flags != flagFreelist:
		return nil, damaged("its free list (page %d) is overwritten", id)
	case want != flagFreelist && flags != flagBranch && flags != flagLeaf:
		return nil, damaged("page %d is overwritten: its type is %#x", id, flags)
	case id+overflow >= c.m.pgid:
		return nil, damaged("page %d runs past the last page (%d overflow pages)", id, overflow)
	}
	for i := id; i <= id+overflow; i++ {
		if c.used[i] {
			return nil, damaged("page %d is reached twice", i)
		}
		if c.free[i] && want != flagFreelist {
			return nil, damaged("page %d is in use and on the free list", i)
		}
		c.used[i] = true
	}
	buf := make([]byte, int64(overflow+1)*c.ps)
	if _, err := c.f.ReadAt(buf, int64(id)*c.ps); err != nil {
		return nil, err
	}
	return buf, nil
}

func (c *fileCheck) checkFreelist() error {
	if c.m.freelist == noFreelist {
		return nil
	}
	id := c.m.freelist
	if id < 2 || id >= c.m.pgid {
		return damaged("its free list page %d is outside its %d pages", id, c.m.pgid)
	}
	p, err := c.readPage(id, flagFreelist)
	if err != nil {
		return err
	}
	idx, count := uint64(0), uint64(le.Uint16(p[10:]))
	if count == 0xFFFF {
		if len(p) < pageHeaderSize+8 {
			return damaged("its free list (page %d) is cut short", id)
		}
		idx, count = 1, le.Uint64(p[pageHeaderSize:])
	}
	if count > uint64(len(p)-pageHeaderSize)/8-idx {
		return damaged("its free list (page %d) counts %d pages, more than it holds", id, count)
	}
	for i := range count {
		fid := le.Uint64(p[pageHeaderSize+8*(idx+i):])
		if fid < 2 || fid >= c.m.pgid {
			return damaged("its free list names page %d, outside its %d pages", fid, c.m.pgid)
		}
		if c.free[fid] || c.used[fid] {
			return damaged("its free list names page %d twice, or a page it is stored in", fid)
		}
		c.free[fid] = true
	}
	c.freeSync = true
	return nil
}

// walk checks the subtree at page id: keys in strict order within
// [lo, hi) (nil: unbounded), every element inside its page, every child
// and nested bucket below the high-water mark and reached once.
func (c *fileCheck) walk(id uint64, lo, hi []byte, depth int) error {
	if depth > maxDepth {
		return damaged("page %d is deeper than %d levels", id, maxDepth)
	}
	if id < 2 || id >= c.m.pgid {
		return damaged("a branch points to page %d, outside the %d pages", id, c.m.pgid)
	}
	p, err := c.readPage(id, 0)
	if err != nil {
		return err
	}
	return c.walkElements(id, p, lo, hi, depth)
}

// walkElements checks the elements of page p (a page read from the file,
// or an inline bucket's page inside a value; id names it in messages).
func (c *fileCheck) walkElements(id uint64, p []byte, lo, hi []byte, depth int) error {
	if len(p) < pageHeaderSize {
		return damaged("page %d is cut short", id)
	}
	flags, count := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if flags != flagBranch && flags != flagLeaf {
		return damaged("page %d has flags %#x", id, flags)
	}
	if pageHeaderSize+count*elementSize > len(p) {
		return damaged("page %d counts %d elements, more than it holds", id, count)
	}
	// field returns p[off : off+n] or nil if it leaves the page.
	field := func(off, n uint64) []byte {
		if off > uint64(len(p)) || n > uint64(len(p))-off {
			return nil
		}
		return p[off : off+n]
	}
	var prev []byte
	for i := range count {
		e := uint64(pageHeaderSize + i*elementSize)
		var key, val []byte
		var child uint64
		var eflags uint32
		if flags == flagBranch {
			pos, ksize := uint64(le.Uint32(p[e:])), uint64(le.Uint32(p[e+4:]))
			child = le.Uint64(p[e+8:])
			key = field(e+pos, ksize)
		} else {
			eflags = le.Uint32(p[e:])
			pos, ksize, vsize := uint64(le.Uint32(p[e+4:])), uint64(le.Uint32(p[e+8:])), uint64(le.Uint32(p[e+12:]))
			key = field(e+pos, ksize)
			val = field(e+pos+ksize, vsize)
		}
		if key == nil || (flags == flagLeaf && val == nil) {
			return damaged("page %d: element %d lies outside the page", id, i)
		}
		if (i > 0 && bytes.Compare(prev, key) >= 0) || (i == 0 && lo != nil && bytes.Compare(key, lo) < 0) || (hi != nil && bytes.Compare(key, hi) >= 0) {
			return damaged("page %d: element %d is out of key order", id, i)
		}
		prev = key
		if flags == flagBranch {
			var next []byte = hi
			if i+1 < count {
				ne := uint64(pageHeaderSize + (i+1)*elementSize)
				next = field(ne+uint64(le.Uint32(p[ne:])), uint64(le.Uint32(p[ne+4:])))
				if next == nil {
					return damaged("page %d: element %d lies outside the page", id, i+1)
				}
			}
			if err := c.walk(child, key, next, depth+1); err != nil {
				return err
			}
			continue
		}
		if eflags&leafBucket == 0 {
			continue
		}
		// A nested bucket: its header, then (inline) its only page.
		if len(val) < bucketHeader {
			return damaged("page %d: bucket %d has a short header", id, i)
		}
		if root := le.Uint64(val); root != 0 {
			if err := c.walk(root, nil, nil, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := val[bucketHeader:]
		if len(inline) >= pageHeaderSize && le.Uint16(inline[8:]) != flagLeaf {
			return damaged("page %d: inline bucket %d is not a leaf", id, i)
		}
		if err := c.walkElements(id, inline, nil, nil, depth+1); err != nil {
			return err
		}
	}
	return nil
}
