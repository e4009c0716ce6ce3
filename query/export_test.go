package query

// Logins returns the directory's login index (lower-cased username or
// email to user id), which snapshots leave out and loading reads again.
func Logins(d *Directory) map[string]string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := map[string]string{}
	for l, u := range d.logins {
		out[l] = u.id
	}
	return out
}
