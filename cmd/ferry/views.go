package main

import (
	"time"

	"github.com/ferryhpc/ferry/plugin"
)

type hostKeyView struct {
	Type        string `json:"type"`
	Fingerprint string `json:"fingerprint"`
}

type memberStatusView struct {
	Member   string `json:"member"`
	Role     string `json:"role"`
	Status   string `json:"status"`
	Username string `json:"username,omitempty"`
}

type identityView struct {
	Name       string             `json:"name"`
	Scheduler  string             `json:"scheduler"`
	Host       string             `json:"host"`
	Port       int                `json:"port"`
	WorkDir    string             `json:"work_dir"`
	Group      string             `json:"group"`
	JumpHost   string             `json:"jump_host,omitempty"`
	KnownHosts string             `json:"known_hosts,omitempty"`
	HostKeys   []hostKeyView      `json:"host_keys"`
	CreatedBy  string             `json:"created_by,omitempty"`
	CreatedAt  string             `json:"created_at,omitempty"`
	UpdatedBy  string             `json:"updated_by,omitempty"`
	UpdatedAt  string             `json:"updated_at,omitempty"`
	ActiveJobs int                `json:"active_jobs"`
	Members    []memberStatusView `json:"members"`
}

func identityJSON(id plugin.Identity) identityView {
	v := identityView{
		Name: id.Name, Scheduler: id.Scheduler, Host: id.Host, Port: id.Port, WorkDir: id.WorkDir, Group: id.Group,
		JumpHost: id.JumpHost, KnownHosts: id.KnownHosts, CreatedBy: id.CreatedBy, CreatedAt: ts(id.CreatedAt),
		UpdatedBy: id.UpdatedBy, UpdatedAt: ts(id.UpdatedAt), ActiveJobs: id.ActiveJobs,
		HostKeys: []hostKeyView{}, Members: []memberStatusView{},
	}
	if v.Port == 0 {
		v.Port = 22
	}
	for _, k := range id.HostKeys {
		v.HostKeys = append(v.HostKeys, hostKeyView{Type: k.Type, Fingerprint: k.Fingerprint})
	}
	for _, m := range id.Members {
		v.Members = append(v.Members, memberStatusView(m))
	}
	return v
}

type memberView struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	UnixUsers []string `json:"unix_users"`
}

func memberJSON(m plugin.Member) memberView {
	v := memberView{Name: m.Name, Role: m.Role, UnixUsers: m.UnixUsers}
	if v.UnixUsers == nil {
		v.UnixUsers = []string{}
	}
	return v
}

type credentialView struct {
	Identity    string `json:"identity"`
	Member      string `json:"member"`
	Username    string `json:"username"`
	KeyType     string `json:"key_type"`
	Fingerprint string `json:"fingerprint"`
	Encrypted   bool   `json:"encrypted"`
	AddedBy     string `json:"added_by,omitempty"`
	AddedAt     string `json:"added_at,omitempty"`
	UpdatedAt   string `json:"updated_at,omitempty"`
	Status      string `json:"status"`
	LastOK      string `json:"last_ok,omitempty"`
	LastError   string `json:"last_error,omitempty"`
	Failures    int    `json:"failures"`
}

func credentialJSON(c plugin.Credential) credentialView {
	return credentialView{
		Identity: c.Identity, Member: c.Member, Username: c.Username, KeyType: c.KeyType, Fingerprint: c.Fingerprint,
		Encrypted: c.Encrypted, AddedBy: c.AddedBy, AddedAt: ts(c.AddedAt), UpdatedAt: ts(c.UpdatedAt),
		Status: c.Status, LastOK: ts(c.LastOK), LastError: c.LastError, Failures: c.Failures,
	}
}

type checkView struct {
	Member string `json:"member"`
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

type auditView struct {
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Via      string `json:"via,omitempty"`
	Action   string `json:"action"`
	Identity string `json:"identity,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Target   string `json:"target,omitempty"`
	Outcome  string `json:"outcome"`
	Detail   string `json:"detail,omitempty"`
}

func auditJSON(e plugin.AuditEvent) auditView {
	return auditView{Time: e.Time.UTC().Format(time.RFC3339Nano), Actor: e.Actor, Via: e.Via, Action: e.Action,
		Identity: e.Identity, Subject: e.Subject, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail}
}

type poolView struct {
	Identity          string `json:"identity"`
	User              string `json:"user"`
	Connections       int    `json:"connections"`
	Sessions          int    `json:"sessions"`
	Waiters           int    `json:"waiters"`
	Dials             int64  `json:"dials"`
	DialFailures      int64  `json:"dial_failures"`
	LastError         string `json:"last_error,omitempty"`
	CommandsPerMinute int    `json:"commands_per_minute"`
}
