package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketIdentities  = []byte("identities")
	bucketMembers     = []byte("members")
	bucketCredentials = []byte("credentials")
)

// Identity is a managed identity's stored record.
type Identity struct {
	Name       string    `json:"name"`
	Scheduler  string    `json:"scheduler"`
	Host       string    `json:"host"`
	Port       int       `json:"port"`
	WorkDir    string    `json:"work_dir"`
	Group      string    `json:"group"`
	KnownHosts string    `json:"known_hosts"`
	JumpHost   string    `json:"jump_host,omitempty"`
	CommandDir string    `json:"command_dir,omitempty"` // scheduler commands' directory
	PBSHistory bool      `json:"pbs_history,omitempty"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedBy  string    `json:"updated_by,omitempty"`
	UpdatedAt  time.Time `json:"updated_at,omitempty"`
}

// Member is an organisation member.
type Member struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	UnixUsers []string `json:"unix_users,omitempty"`
}

// Credential is a member's credential on an identity. Key and Passphrase are sealed blobs
// (internal/secrets); the plaintext never reaches the store.
type Credential struct {
	Identity    string    `json:"identity"`
	Member      string    `json:"member"`
	Username    string    `json:"username"`
	Key         []byte    `json:"key"`
	Passphrase  []byte    `json:"passphrase,omitempty"`
	KeyType     string    `json:"key_type"`
	Fingerprint string    `json:"fingerprint"`
	Encrypted   bool      `json:"encrypted"`
	AddedBy     string    `json:"added_by"`
	AddedAt     time.Time `json:"added_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Verified    bool      `json:"verified"`
	LastOK      time.Time `json:"last_ok,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastFailure time.Time `json:"last_failure,omitempty"`
	Failures    int       `json:"failures"`
	Held        bool      `json:"held"`
	// Certificate is an optional OpenSSH user certificate for Key (public, stored as is).
	Certificate []byte    `json:"certificate,omitempty"`
	CertExpires time.Time `json:"cert_expires,omitempty"`
}

func credKey(identity, member string) []byte { return []byte(identity + "\x00" + member) }

func (s *Bolt) put(bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return bk.Put(key, b)
	})
}

func (s *Bolt) get(bucket, key []byte, v any) error {
	return s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return ErrNotFound
		}
		b := bk.Get(key)
		if b == nil {
			return ErrNotFound
		}
		return json.Unmarshal(b, v)
	})
}

func (s *Bolt) del(bucket, key []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return nil
		}
		return bk.Delete(key)
	})
}

func list[T any](s *Bolt, bucket []byte) ([]T, error) {
	var out []T
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(_, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}

// PutIdentity inserts or replaces an identity.
func (s *Bolt) PutIdentity(i Identity) error { return s.put(bucketIdentities, []byte(i.Name), i) }

// GetIdentity returns the identity called name.
func (s *Bolt) GetIdentity(name string) (Identity, error) {
	var i Identity
	if err := s.get(bucketIdentities, []byte(name), &i); err != nil {
		return i, fmt.Errorf("identity %q: %w", name, err)
	}
	return i, nil
}

// Identities returns every identity.
func (s *Bolt) Identities() ([]Identity, error) { return list[Identity](s, bucketIdentities) }

// DeleteIdentity removes an identity and all its credentials in one transaction.
func (s *Bolt) DeleteIdentity(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bucketIdentities); bk != nil {
			if err := bk.Delete([]byte(name)); err != nil {
				return err
			}
		}
		bk := tx.Bucket(bucketCredentials)
		if bk == nil {
			return nil
		}
		prefix := []byte(name + "\x00")
		c := bk.Cursor()
		var keys [][]byte
		for k, _ := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutMember inserts or replaces a member.
func (s *Bolt) PutMember(m Member) error { return s.put(bucketMembers, []byte(m.Name), m) }

// GetMember returns the member called name.
func (s *Bolt) GetMember(name string) (Member, error) {
	var m Member
	if err := s.get(bucketMembers, []byte(name), &m); err != nil {
		return m, fmt.Errorf("member %q: %w", name, err)
	}
	return m, nil
}

// Members returns every member.
func (s *Bolt) Members() ([]Member, error) { return list[Member](s, bucketMembers) }

// DeleteMember removes a member (their credentials are removed by the caller).
func (s *Bolt) DeleteMember(name string) error { return s.del(bucketMembers, []byte(name)) }

// PutCredential inserts or replaces a credential.
func (s *Bolt) PutCredential(c Credential) error {
	return s.put(bucketCredentials, credKey(c.Identity, c.Member), c)
}

// GetCredential returns member's credential on identity.
func (s *Bolt) GetCredential(identity, member string) (Credential, error) {
	var c Credential
	if err := s.get(bucketCredentials, credKey(identity, member), &c); err != nil {
		return c, fmt.Errorf("credential of %q on %q: %w", member, identity, err)
	}
	return c, nil
}

// Credentials returns every credential.
func (s *Bolt) Credentials() ([]Credential, error) { return list[Credential](s, bucketCredentials) }

// DeleteCredential removes member's credential on identity.
func (s *Bolt) DeleteCredential(identity, member string) error {
	return s.del(bucketCredentials, credKey(identity, member))
}
