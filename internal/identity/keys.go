package identity

import (
	"context"
	"fmt"
	"os"

	"github.com/ferryhpc/ferry/internal/audit"
	"github.com/ferryhpc/ferry/internal/secrets"
	"github.com/ferryhpc/ferry/internal/store"
	"github.com/ferryhpc/ferry/plugin/contract"
)

// RotateKeys re-seals every secret under a fresh key-encryption key and writes the new key file
// only after every record is re-sealed (owners only).
func (reg *Registry) RotateKeys(ctx context.Context) (n int, err error) {
	p, err := reg.Authorize(ctx, KeysRotate, "")
	defer func() {
		reg.Audited(p, audit.ActionKeysRotate, "", "", "", err, fmt.Sprintf("%d secrets re-sealed", n))
	}()
	if err != nil {
		return 0, err
	}
	if reg.cfg.Agent.KEKEnv != "" && envSet(reg.cfg.Agent.KEKEnv) {
		return 0, fmt.Errorf("%w: the key-encryption key comes from $%s; rotate it where it is managed", contract.ErrFailedPrecondition, reg.cfg.Agent.KEKEnv)
	}
	next, err := secrets.NewKEK()
	if err != nil {
		return 0, err
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var resealed []store.Credential
	for _, c := range reg.creds {
		rec := c.rec
		if rec.Key, err = secrets.Reseal(reg.kek, next, rec.Key, sealAD(rec.Identity, rec.Member, "key")); err != nil {
			return 0, fmt.Errorf("re-seal key of %q on %q: %w", rec.Member, rec.Identity, err)
		}
		n++
		if len(rec.Passphrase) > 0 {
			if rec.Passphrase, err = secrets.Reseal(reg.kek, next, rec.Passphrase, sealAD(rec.Identity, rec.Member, "passphrase")); err != nil {
				return 0, fmt.Errorf("re-seal passphrase of %q on %q: %w", rec.Member, rec.Identity, err)
			}
			n++
		}
		resealed = append(resealed, rec)
	}
	// Records first, key file last: a crash in between leaves records that only the new key opens,
	// so keep the old key file as a backup until the new one is written.
	kekFile := reg.kekFile
	if err := secrets.WriteKEKFile(kekFile+".next", next); err != nil {
		return 0, err
	}
	for _, rec := range resealed {
		if err := reg.store.PutCredential(rec); err != nil {
			return 0, err
		}
		reg.creds[credKey{rec.Identity, rec.Member}].rec = rec
	}
	if err := secrets.WriteKEKFile(kekFile, next); err != nil {
		return 0, err
	}
	_ = os.Remove(kekFile + ".next")
	reg.kek = next
	return n, nil
}
