package bolt

// Hooks for the tests of this package.

// SetTxHook makes the leader call f inside each transaction, after its
// commits are applied, with their number; an error from f fails the
// transaction. Set it before the first Commit.
func SetTxHook(d *Driver, f func(n int) error) { d.w.hook = f }

// Transactions returns how many write transactions were written.
func Transactions(d *Driver) int64 { return d.w.txs.Load() }

// Queued returns how many commits wait for a leader.
func Queued(d *Driver) int {
	d.w.mu.Lock()
	defer d.w.mu.Unlock()
	return len(d.w.queue)
}
