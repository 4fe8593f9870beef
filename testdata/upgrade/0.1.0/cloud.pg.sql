--
-- PostgreSQL database dump
--

\restrict RbL8IFI5VVwWk45dIuSGLt4UOY68ldMPH39QzkH8B5QL90oAzkrm9cf43pxHUWS

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: audit_log_no_update(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.audit_log_no_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only';
END;
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_keys (
    id text NOT NULL,
    name text NOT NULL,
    key_hash text NOT NULL,
    prefix text NOT NULL,
    role text NOT NULL,
    owner_id text NOT NULL,
    created_at_ms bigint NOT NULL,
    expires_at_ms bigint,
    last_used_at_ms bigint,
    revoked_at_ms bigint,
    replaces text
);


--
-- Name: audit_head; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_head (
    id integer NOT NULL,
    seq bigint NOT NULL,
    hash text NOT NULL,
    CONSTRAINT audit_head_id_check CHECK ((id = 1))
);


--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    seq bigint NOT NULL,
    ts_ms bigint NOT NULL,
    event text NOT NULL,
    actor text NOT NULL,
    target text NOT NULL,
    outcome text NOT NULL,
    client_ip text NOT NULL,
    details text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);


--
-- Name: auth_tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.auth_tokens (
    jti text NOT NULL,
    user_id text NOT NULL,
    kind text NOT NULL,
    role text NOT NULL,
    family_id text NOT NULL,
    created_via text NOT NULL,
    issued_at_ms bigint NOT NULL,
    expires_at_ms bigint NOT NULL,
    revoked_at_ms bigint,
    used_at_ms bigint
);


--
-- Name: certificates; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.certificates (
    serial text NOT NULL,
    subject_kind text NOT NULL,
    subject_id text NOT NULL,
    fingerprint text NOT NULL,
    not_before bigint NOT NULL,
    not_after bigint NOT NULL,
    issued_at bigint NOT NULL,
    issued_by text NOT NULL,
    revoked_at bigint,
    revoked_reason text,
    CONSTRAINT certificates_subject_kind_check CHECK ((subject_kind = ANY (ARRAY['host'::text, 'hub'::text])))
);


--
-- Name: customer_notifications; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.customer_notifications (
    key text NOT NULL,
    customer_id text,
    last_sent_at_ms bigint NOT NULL
);


--
-- Name: customers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.customers (
    id text NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    domain text,
    locale text NOT NULL,
    status text NOT NULL,
    retrieval_password_hash text NOT NULL,
    config_json text NOT NULL,
    created_at_ms bigint NOT NULL,
    updated_at_ms bigint NOT NULL
);


--
-- Name: deploy_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.deploy_keys (
    id text NOT NULL,
    label text NOT NULL,
    key_hash text NOT NULL,
    prefix text NOT NULL,
    created_by text NOT NULL,
    created_at_ms bigint NOT NULL,
    revoked_at_ms bigint
);


--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    id bigint NOT NULL,
    at_ms bigint NOT NULL,
    kind text NOT NULL,
    severity text NOT NULL,
    customer_id text,
    host_id text,
    guest_id text,
    op_id text,
    details_json text NOT NULL
);


--
-- Name: events_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: events_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.events_id_seq OWNED BY public.events.id;


--
-- Name: guest_reports; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.guest_reports (
    id bigint NOT NULL,
    guest_id text NOT NULL,
    host_id text NOT NULL,
    customer_id text NOT NULL,
    received_at_ms bigint NOT NULL,
    cpu_percent double precision,
    memory_used_bytes bigint,
    memory_total_bytes bigint,
    report_json text NOT NULL
);


--
-- Name: guest_reports_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.guest_reports_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: guest_reports_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.guest_reports_id_seq OWNED BY public.guest_reports.id;


--
-- Name: guests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.guests (
    id text NOT NULL,
    customer_id text NOT NULL,
    host_id text NOT NULL,
    key_hash text NOT NULL,
    display_name text NOT NULL,
    created_at_ms bigint NOT NULL,
    desired_spec_json text,
    controller_version text,
    status text DEFAULT 'unknown'::text NOT NULL,
    last_seen_at_ms bigint,
    last_report_at_ms bigint
);


--
-- Name: host_reports; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.host_reports (
    id bigint NOT NULL,
    host_id text NOT NULL,
    customer_id text NOT NULL,
    received_at_ms bigint NOT NULL,
    applied_generation bigint NOT NULL,
    cpu_percent double precision NOT NULL,
    memory_used_bytes bigint NOT NULL,
    memory_total_bytes bigint NOT NULL,
    disk_used_bytes bigint NOT NULL,
    disk_total_bytes bigint NOT NULL,
    guests_total bigint NOT NULL,
    guests_running bigint NOT NULL,
    report_json text NOT NULL
);


--
-- Name: host_reports_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.host_reports_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: host_reports_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.host_reports_id_seq OWNED BY public.host_reports.id;


--
-- Name: hosts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.hosts (
    id text NOT NULL,
    customer_id text NOT NULL,
    key_hash text NOT NULL,
    hostname text NOT NULL,
    platform text,
    enrolled_at_ms bigint NOT NULL,
    agent_version text NOT NULL,
    controller_version text,
    applied_generation bigint DEFAULT 0 NOT NULL,
    last_report_at_ms bigint,
    last_backups_json text DEFAULT '[]'::text NOT NULL,
    pending_signature_json text DEFAULT '[]'::text NOT NULL,
    desired_json text NOT NULL,
    desired_generation bigint DEFAULT 0 NOT NULL,
    desired_updated_at_ms bigint NOT NULL,
    recovery_mode_until_ms bigint,
    backup_namespace text,
    repository_fingerprint text,
    escrow text,
    escrow_at_ms bigint,
    liveness text DEFAULT 'ok'::text NOT NULL,
    backup_missed_json text DEFAULT '[]'::text NOT NULL
);


--
-- Name: hubs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.hubs (
    id text NOT NULL,
    deploy_key_id text NOT NULL,
    hostname text NOT NULL,
    hub_version text NOT NULL,
    platform text NOT NULL,
    license_mode text NOT NULL,
    registered_at_ms bigint NOT NULL,
    last_seen_at_ms bigint NOT NULL,
    last_validated_at_ms bigint,
    healthy boolean DEFAULT true NOT NULL,
    issues_json text DEFAULT '[]'::text NOT NULL
);


--
-- Name: job_leases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.job_leases (
    name text NOT NULL,
    holder text NOT NULL,
    until_ms bigint NOT NULL
);


--
-- Name: notification_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notification_log (
    id bigint NOT NULL,
    at_ms bigint NOT NULL,
    event_id bigint,
    customer_id text,
    tier text NOT NULL,
    channel text NOT NULL,
    recipient text NOT NULL,
    status text NOT NULL,
    error text
);


--
-- Name: notification_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.notification_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: notification_log_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.notification_log_id_seq OWNED BY public.notification_log.id;


--
-- Name: report_idempotency; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.report_idempotency (
    scope text NOT NULL,
    key text NOT NULL,
    received_at_ms bigint NOT NULL
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    name text NOT NULL,
    applied_at_ms bigint NOT NULL
);


--
-- Name: signed_ops; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.signed_ops (
    id text NOT NULL,
    customer_id text NOT NULL,
    host_id text NOT NULL,
    guest_id text,
    op_type text NOT NULL,
    op_blob text NOT NULL,
    signature text,
    status text NOT NULL,
    nonce text NOT NULL,
    issued_at_ms bigint NOT NULL,
    expires_at_ms bigint NOT NULL,
    created_by text NOT NULL,
    created_at_ms bigint NOT NULL,
    signed_at_ms bigint,
    delivered_at_ms bigint,
    finished_at_ms bigint,
    result_json text
);


--
-- Name: transfer_chunks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.transfer_chunks (
    transfer_id text NOT NULL,
    idx bigint NOT NULL,
    size bigint NOT NULL,
    sha256 text NOT NULL,
    last boolean NOT NULL,
    stored_at_ms bigint NOT NULL,
    CONSTRAINT transfer_chunks_idx_check CHECK ((idx >= 0)),
    CONSTRAINT transfer_chunks_size_check CHECK ((size >= 0))
);


--
-- Name: transfer_recipients; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.transfer_recipients (
    transfer_id text NOT NULL,
    recipient_kind text NOT NULL,
    recipient_id text NOT NULL,
    display text NOT NULL,
    downloaded_at_ms bigint
);


--
-- Name: transfers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.transfers (
    id text NOT NULL,
    sender_id text NOT NULL,
    status text NOT NULL,
    header bytea NOT NULL,
    chunk_size bigint NOT NULL,
    chunk_count bigint,
    ciphertext_bytes bigint DEFAULT 0 NOT NULL,
    manifest bytea,
    created_at_ms bigint NOT NULL,
    completed_at_ms bigint,
    cancelled_at_ms bigint,
    expires_at_ms bigint NOT NULL,
    site text
);


--
-- Name: user_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_keys (
    user_id text NOT NULL,
    public_key text NOT NULL,
    fingerprint text NOT NULL,
    created_at_ms bigint NOT NULL,
    updated_at_ms bigint NOT NULL
);


--
-- Name: user_sites; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.user_sites (
    user_id text NOT NULL,
    hub_id text,
    seen_at_ms bigint NOT NULL
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id text NOT NULL,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    user_type text NOT NULL,
    password_hash text,
    created_at_ms bigint NOT NULL,
    updated_at_ms bigint NOT NULL,
    last_login_at_ms bigint
);


--
-- Name: events id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events ALTER COLUMN id SET DEFAULT nextval('public.events_id_seq'::regclass);


--
-- Name: guest_reports id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.guest_reports ALTER COLUMN id SET DEFAULT nextval('public.guest_reports_id_seq'::regclass);


--
-- Name: host_reports id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.host_reports ALTER COLUMN id SET DEFAULT nextval('public.host_reports_id_seq'::regclass);


--
-- Name: notification_log id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_log ALTER COLUMN id SET DEFAULT nextval('public.notification_log_id_seq'::regclass);


--
-- Data for Name: api_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.api_keys (id, name, key_hash, prefix, role, owner_id, created_at_ms, expires_at_ms, last_used_at_ms, revoked_at_ms, replaces) FROM stdin;
key-fx-admin	fixture key key-fx-admin	70fe602356eab3eb8165cd3f1e68694fc06d65844cf147be96b4f5139e80e0ce	mftpk_admin	admin	usr-fx-admin	1767225600010	\N	1767225620000	\N	\N
key-fx-old	fixture key key-fx-old	9c3baa0a1275319c2a3dc328dcc4a0a0ca78851396adc00069a13cf30f3af125	mftpk_old	operator	usr-fx-operator	1767225600011	1775001600011	\N	1767225630000	\N
key-fx-new	fixture key key-fx-new	989c98cdde78f816e26bc7710cc3ab025a053f087e2b6bea01c126f3a51466e0	mftpk_new	operator	usr-fx-operator	1767225630000	1775001630000	\N	\N	key-fx-old
key-fx-gone	fixture key key-fx-gone	28733a465b3ad529ee6b1ab202d8920b4b1364a6a411f58db024ff41048f910b	mftpk_gone	viewer	usr-fx-gone	1767225600012	1775001600012	\N	1767225640000	\N
\.


--
-- Data for Name: audit_head; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.audit_head (id, seq, hash) FROM stdin;
1	5	9725f2e1d9fbb5cc16239cc0155f106d20129b1bd9b42b1c8b523478129f397d
\.


--
-- Data for Name: audit_log; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.audit_log (seq, ts_ms, event, actor, target, outcome, client_ip, details, prev_hash, hash) FROM stdin;
1	1767225600000	user.create	admin@fixture.example	user:usr-fx-admin	success	192.0.2.10	{"role":"admin"}	0000000000000000000000000000000000000000000000000000000000000000	b605b0c13a854f444f3ad832f9de68ce48436844adb292b666d43fb22f76a93f
2	1767225600100	user.login	admin@fixture.example	user:usr-fx-admin	success	192.0.2.10	{}	b605b0c13a854f444f3ad832f9de68ce48436844adb292b666d43fb22f76a93f	dc9da78be37f966e6a8017d78046aa7bf8b7093ac5c75953782f739c43a5ed4c
3	1767225600200	user.update	admin@fixture.example	user:usr-fx-operator	success	192.0.2.10	{"name":"Olga Operátor ✓","role":{"from":"viewer","to":"operator"}}	dc9da78be37f966e6a8017d78046aa7bf8b7093ac5c75953782f739c43a5ed4c	b50067f326a3af7c6c7eacb4c79d5410ed900ee4954ebc4b9107af8911774edf
4	1767225630000	apikey.rotate	admin@fixture.example	apikey:key-fx-old	success	192.0.2.10	{"big":12345678901234567,"neg":-3,"ratio":0.1,"tiny":1e-7}	b50067f326a3af7c6c7eacb4c79d5410ed900ee4954ebc4b9107af8911774edf	48a1df810efb68dd5abfdbbebc3228ff83fb2b7893ff839c7d6fc37186222fda
5	1767225631000	user.delete	admin@fixture.example	user:usr-fx-gone	denied	2001:db8::7	{"list":[1,null,true],"reason":"line\\nbreak \\"quoted\\" \\\\ back"}	48a1df810efb68dd5abfdbbebc3228ff83fb2b7893ff839c7d6fc37186222fda	9725f2e1d9fbb5cc16239cc0155f106d20129b1bd9b42b1c8b523478129f397d
\.


--
-- Data for Name: auth_tokens; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.auth_tokens (jti, user_id, kind, role, family_id, created_via, issued_at_ms, expires_at_ms, revoked_at_ms, used_at_ms) FROM stdin;
jti-fx-access	usr-fx-admin	access	admin	fam-usr-fx-admin	login	1767225600100	1769817600100	\N	\N
jti-fx-refreshed	usr-fx-admin	refresh	admin	fam-usr-fx-admin	refresh	1767225601000	1769817601000	\N	\N
jti-fx-refresh	usr-fx-admin	refresh	admin	fam-usr-fx-admin	login	1767225600100	1769817600100	\N	1767225601000
jti-fx-session	usr-fx-admin	session	admin	fam-usr-fx-admin	login	1767225601100	1769817601100	\N	1767225601500
jti-fx-revoked	usr-fx-operator	access	operator	fam-usr-fx-operator	admin	1767225601200	1769817601200	1767225602000	\N
jti-fx-gone	usr-fx-gone	access	operator	fam-usr-fx-gone	login	1767225601300	1769817601300	1767225640000	\N
\.


--
-- Data for Name: certificates; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.certificates (serial, subject_kind, subject_id, fingerprint, not_before, not_after, issued_at, issued_by, revoked_at, revoked_reason) FROM stdin;
0f1e2d3c4b5a69788796a5b4c3d2e1f0	host	hst-fx-1	a1bf4dc2c0cea821798c38e16fcc1667d6f0504afa821b181672035fc5967890	1767225540	1775001600	1767225600	host:hst-fx-1	\N	\N
1f2e3d4c5b6a79889796a5b4c3d2e1f0	hub	hub-fx-1	bf508284397ab45990f7f4d18de33ee0e95b98ce56c163a3dcc64322aaa903a4	1767225540	1775001600	1767225610	admin@fixture.example	\N	\N
2f3e4d5c6b7a89989796a5b4c3d2e1f0	host	hst-fx-1	90d0e12e817b949b0deb481a805cd02d04624bdfe96114be0574ba498809a5c6	1767225540	1775001600	1767225590	host:hst-fx-1	1767225700	superseded
\.


--
-- Data for Name: customer_notifications; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.customer_notifications (key, customer_id, last_sent_at_ms) FROM stdin;
fx:host_down:hst-fx-1	cus-fx-acme	1767225612000
\.


--
-- Data for Name: customers; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.customers (id, name, email, domain, locale, status, retrieval_password_hash, config_json, created_at_ms, updated_at_ms) FROM stdin;
cus-fx-acme	Acme Kft.	it@cus-fx-acme.fixture.example	cus-fx-acme.fixture.example	hu	active	$argon2id$v=19$m=19456,t=2,p=1$Zml4dHVyZS1zYWx0$0Uy0r5FhXCTf1mc3kvRk7cZQeJt1Q6kVtm2tq5zZ0nA	{"backup":{"retention_days":30}}	1767225607000	1767225607000
cus-fx-blocked	Late Payer Bt.	it@cus-fx-blocked.fixture.example	\N	hu	blocked	$argon2id$v=19$m=19456,t=2,p=1$Zml4dHVyZS1zYWx0$0Uy0r5FhXCTf1mc3kvRk7cZQeJt1Q6kVtm2tq5zZ0nA	{"backup":{"retention_days":30}}	1767225607001	1767225607100
\.


--
-- Data for Name: deploy_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.deploy_keys (id, label, key_hash, prefix, created_by, created_at_ms, revoked_at_ms) FROM stdin;
dep-fx-1	acme site	9ff9bea6667bad7c88bf10b684391876c5d7ad29cd8f11ee35445b943193b60b	mft_dep_1	admin@fixture.example	1767225613000	\N
dep-fx-old	lost laptop	e5b5efaeb93e2a175e622ea94ff848f6815f81db27a7752c4061187f687c32d6	mft_dep_old	admin@fixture.example	1767225613001	1767225613500
\.


--
-- Data for Name: events; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.events (id, at_ms, kind, severity, customer_id, host_id, guest_id, op_id, details_json) FROM stdin;
1	1767225609000	desired_published	info	cus-fx-acme	hst-fx-1	\N	\N	{"fixture":"desired_published"}
2	1767225609100	op_signed	info	cus-fx-acme	hst-fx-1	\N	op-fx-done	{"fixture":"op_signed"}
3	1767225609200	op_delivered	info	cus-fx-acme	hst-fx-1	gst-fx-1	op-fx-done	{"op_type": "guest.restart"}
4	1767225609300	op_executed	info	cus-fx-acme	hst-fx-1	\N	op-fx-done	{"fixture":"op_executed"}
5	1767225611500	backup_missed	info	cus-fx-acme	hst-fx-1	\N	\N	{"fixture":"backup_missed"}
6	1767225611600	host_enrolled	info	cus-fx-acme	hst-fx-1	\N	\N	{"fixture":"host_enrolled"}
\.


--
-- Data for Name: guest_reports; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.guest_reports (id, guest_id, host_id, customer_id, received_at_ms, cpu_percent, memory_used_bytes, memory_total_bytes, report_json) FROM stdin;
1	gst-fx-1	hst-fx-1	cus-fx-acme	1767225610100	3.25	536870912	2147483648	{"guest_id":"gst-fx-1","services":["sftp"]}
\.


--
-- Data for Name: guests; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.guests (id, customer_id, host_id, key_hash, display_name, created_at_ms, desired_spec_json, controller_version, status, last_seen_at_ms, last_report_at_ms) FROM stdin;
gst-fx-1	cus-fx-acme	hst-fx-1	99c2a9415e0dde6f0977c5b1a8394168f441c8d7bdb4856940adfcaf3a9adfad	files.acme	1767225608100	{"cpu_cores":2,"disk_gb":40,"image":"mftplus/files:0.1.0","kind":"container","memory_mb":2048}	0.1.0	running	1767225610000	1767225610100
\.


--
-- Data for Name: host_reports; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.host_reports (id, host_id, customer_id, received_at_ms, applied_generation, cpu_percent, memory_used_bytes, memory_total_bytes, disk_used_bytes, disk_total_bytes, guests_total, guests_running, report_json) FROM stdin;
1	hst-fx-1	cus-fx-acme	1767225610000	2	12.5	3221225472	17179869184	214748364800	1099511627776	1	1	{"agent_version":"0.1.0","applied_generation":2,"host_id":"hst-fx-1"}
\.


--
-- Data for Name: hosts; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.hosts (id, customer_id, key_hash, hostname, platform, enrolled_at_ms, agent_version, controller_version, applied_generation, last_report_at_ms, last_backups_json, pending_signature_json, desired_json, desired_generation, desired_updated_at_ms, recovery_mode_until_ms, backup_namespace, repository_fingerprint, escrow, escrow_at_ms, liveness, backup_missed_json) FROM stdin;
hst-fx-1	cus-fx-acme	e665ce927585e1d5610244e3196439527693c4a079ae348d5b8edc9c5b490cff	pve1.acme.fixture.example	proxmox	1767225608000	0.1.0	0.1.0	2	1767225610000	[{"at_ms":1767225609500,"durable_id":"disk-1"}]	[{"change":"guest.remove","guest_id":"gst-old"}]	{"guests":{"gst-fx-1":{"run_state":"running","spec":{"cpu_cores":2,"disk_gb":40,"image":"mftplus/files:0.1.0","kind":"container","memory_mb":2048}}},"storage":{"disk-1":{"backup":"daily","class":"slow","role":"bulk"}},"versions":{"controller":"0.1.0"}}	2	1767225609300	1767229200000	ns-fx-acme	fp-fx-repository	wrapped-fx-key	1767225611000	ok	["disk-1"]
\.


--
-- Data for Name: hubs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.hubs (id, deploy_key_id, hostname, hub_version, platform, license_mode, registered_at_ms, last_seen_at_ms, last_validated_at_ms, healthy, issues_json) FROM stdin;
hub-fx-1	dep-fx-1	hub.acme.fixture.example	0.1.0	linux-x86_64	enterprise	1767225614000	1767225616000	1767225615000	f	["cloud_slow"]
\.


--
-- Data for Name: job_leases; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.job_leases (name, holder, until_ms) FROM stdin;
fleet-checker	cloud-fx-1	1767225672000
\.


--
-- Data for Name: notification_log; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.notification_log (id, at_ms, event_id, customer_id, tier, channel, recipient, status, error) FROM stdin;
1	1767225612001	\N	cus-fx-acme	customer	email	it@cus-fx-acme.fixture.example	sent	\N
\.


--
-- Data for Name: report_idempotency; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.report_idempotency (scope, key, received_at_ms) FROM stdin;
hst-fx-1	idem-fx-host-1	1767225610000
gst-fx-1	idem-fx-guest-1	1767225610100
\.


--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.schema_migrations (name, applied_at_ms) FROM stdin;
0001_identity	1796580535663
0002_audit	1796580535663
0003_transfers	1796580535663
0004_fleet	1796580535663
0005_hubs	1796580535663
0006_idempotency	1796580535663
0007_sites	1796580535663
0008_certificates	1796580535663
\.


--
-- Data for Name: signed_ops; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.signed_ops (id, customer_id, host_id, guest_id, op_type, op_blob, signature, status, nonce, issued_at_ms, expires_at_ms, created_by, created_at_ms, signed_at_ms, delivered_at_ms, finished_at_ms, result_json) FROM stdin;
op-fx-pending	cus-fx-acme	hst-fx-1	gst-fx-1	guest.restart	{"guest_id":"gst-fx-1","host_id":"hst-fx-1","op_id":"op-fx-pending","type":"guest.restart"}	\N	pending_signature	nonce-op-fx-pending	1767225609001	1798761609001	admin@fixture.example	1767225609000	\N	\N	\N	\N
op-fx-done	cus-fx-acme	hst-fx-1	gst-fx-1	guest.restart	{"guest_id":"gst-fx-1","host_id":"hst-fx-1","op_id":"op-fx-done","type":"guest.restart"}	-----BEGIN SSH SIGNATURE-----\nfixture\n-----END SSH SIGNATURE-----	executed	nonce-op-fx-done	1767225609000	1798761609000	admin@fixture.example	1767225609000	1767225609100	1767225609200	1767225609300	{"ok":true,"took_ms":1234}
\.


--
-- Data for Name: transfer_chunks; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.transfer_chunks (transfer_id, idx, size, sha256, last, stored_at_ms) FROM stdin;
trf-fx-complete	0	65552	f297b8b49e2ebe9c52fc93c08baf2ad060611764c741913e749f6e5ce2110473	f	1767225603100
trf-fx-complete	1	65552	3495270c875d34416c6bdf13de7cbf50ae654c30462aecf38882dd295ab91e85	f	1767225603100
trf-fx-complete	2	1016	bfd5af0af0a135048ac71bd07c027b3fb8b472a65944dc9f2b6748193f1cfc5b	t	1767225603200
trf-fx-uploading	0	65552	f297b8b49e2ebe9c52fc93c08baf2ad060611764c741913e749f6e5ce2110473	f	1767225603400
\.


--
-- Data for Name: transfer_recipients; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.transfer_recipients (transfer_id, recipient_kind, recipient_id, display, downloaded_at_ms) FROM stdin;
trf-fx-complete	agent	agt-fx-1	agent agt-fx-1	\N
trf-fx-complete	user	usr-fx-operator	user usr-fx-operator	1767225605000
trf-fx-uploading	user	usr-fx-admin	user usr-fx-admin	\N
trf-fx-cancelled	user	usr-fx-admin	user usr-fx-admin	\N
trf-fx-site	agent	agt-fx-1	agent agt-fx-1	\N
\.


--
-- Data for Name: transfers; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.transfers (id, sender_id, status, header, chunk_size, chunk_count, ciphertext_bytes, manifest, created_at_ms, completed_at_ms, cancelled_at_ms, expires_at_ms, site) FROM stdin;
trf-fx-complete	usr-fx-admin	complete	\\x4d4654530001feff20666978747572652073747265616d20686561646572	65536	3	132120	\\x007365616c6564206d616e6966657374ff	1767225603000	1767225604000	\N	1769817603000	\N
trf-fx-uploading	usr-fx-operator	uploading	\\x4d4654530001feff20666978747572652073747265616d20686561646572	65536	\N	65552	\N	1767225603300	\N	\N	1769817603300	\N
trf-fx-cancelled	usr-fx-operator	cancelled	\\x4d4654530001feff20666978747572652073747265616d20686561646572	65536	\N	0	\N	1767225603500	\N	1767225606000	1769817603500	\N
trf-fx-site	usr-fx-admin	uploading	\\x4d4654530001feff20666978747572652073747265616d20686561646572	65536	\N	0	\N	1767225603600	\N	\N	1769817603600	hub-fx-1
\.


--
-- Data for Name: user_keys; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.user_keys (user_id, public_key, fingerprint, created_at_ms, updated_at_ms) FROM stdin;
usr-fx-admin	mftx25519_fixture_admin_second	f78a0dd20ee0995a	1767225600050	1767225600060
usr-fx-operator	mftx25519_fixture_operator	4d866b68895d8665	1767225600070	1767225600070
\.


--
-- Data for Name: user_sites; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.user_sites (user_id, hub_id, seen_at_ms) FROM stdin;
usr-fx-admin	hub-fx-1	1767225617000
usr-fx-operator	\N	1767225617100
\.


--
-- Data for Name: users; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.users (id, email, name, role, user_type, password_hash, created_at_ms, updated_at_ms, last_login_at_ms) FROM stdin;
usr-fx-service	backup-robot@fixture.example	Fixture usr-fx-service	operator	service	\N	1767225600002	1767225600002	\N
usr-fx-admin	admin@fixture.example	Fixture usr-fx-admin	admin	user	$argon2id$v=19$m=19456,t=2,p=1$Zml4dHVyZS1zYWx0$0Uy0r5FhXCTf1mc3kvRk7cZQeJt1Q6kVtm2tq5zZ0nA	1767225600000	1767225600000	1767225600100
usr-fx-operator	operator@fixture.example	Olga Operátor	operator	user	$argon2id$v=19$m=19456,t=2,p=1$Zml4dHVyZS1zYWx0$0Uy0r5FhXCTf1mc3kvRk7cZQeJt1Q6kVtm2tq5zZ0nA	1767225600001	1767225600200	\N
\.


--
-- Name: events_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.events_id_seq', 6, true);


--
-- Name: guest_reports_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.guest_reports_id_seq', 1, true);


--
-- Name: host_reports_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.host_reports_id_seq', 1, true);


--
-- Name: notification_log_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.notification_log_id_seq', 1, true);


--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);


--
-- Name: audit_head audit_head_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_head
    ADD CONSTRAINT audit_head_pkey PRIMARY KEY (id);


--
-- Name: audit_log audit_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT audit_log_pkey PRIMARY KEY (seq);


--
-- Name: auth_tokens auth_tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.auth_tokens
    ADD CONSTRAINT auth_tokens_pkey PRIMARY KEY (jti);


--
-- Name: certificates certificates_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_pkey PRIMARY KEY (serial);


--
-- Name: customer_notifications customer_notifications_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customer_notifications
    ADD CONSTRAINT customer_notifications_pkey PRIMARY KEY (key);


--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);


--
-- Name: deploy_keys deploy_keys_key_hash_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deploy_keys
    ADD CONSTRAINT deploy_keys_key_hash_uq UNIQUE (key_hash);


--
-- Name: deploy_keys deploy_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deploy_keys
    ADD CONSTRAINT deploy_keys_pkey PRIMARY KEY (id);


--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (id);


--
-- Name: guest_reports guest_reports_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.guest_reports
    ADD CONSTRAINT guest_reports_pkey PRIMARY KEY (id);


--
-- Name: guests guests_key_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.guests
    ADD CONSTRAINT guests_key_hash_key UNIQUE (key_hash);


--
-- Name: guests guests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.guests
    ADD CONSTRAINT guests_pkey PRIMARY KEY (id);


--
-- Name: host_reports host_reports_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.host_reports
    ADD CONSTRAINT host_reports_pkey PRIMARY KEY (id);


--
-- Name: hosts hosts_key_hash_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hosts
    ADD CONSTRAINT hosts_key_hash_key UNIQUE (key_hash);


--
-- Name: hosts hosts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hosts
    ADD CONSTRAINT hosts_pkey PRIMARY KEY (id);


--
-- Name: hubs hubs_key_hostname_uq; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hubs
    ADD CONSTRAINT hubs_key_hostname_uq UNIQUE (deploy_key_id, hostname);


--
-- Name: hubs hubs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hubs
    ADD CONSTRAINT hubs_pkey PRIMARY KEY (id);


--
-- Name: job_leases job_leases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.job_leases
    ADD CONSTRAINT job_leases_pkey PRIMARY KEY (name);


--
-- Name: notification_log notification_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notification_log
    ADD CONSTRAINT notification_log_pkey PRIMARY KEY (id);


--
-- Name: report_idempotency report_idempotency_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.report_idempotency
    ADD CONSTRAINT report_idempotency_pkey PRIMARY KEY (scope, key);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (name);


--
-- Name: signed_ops signed_ops_nonce_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signed_ops
    ADD CONSTRAINT signed_ops_nonce_key UNIQUE (nonce);


--
-- Name: signed_ops signed_ops_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.signed_ops
    ADD CONSTRAINT signed_ops_pkey PRIMARY KEY (id);


--
-- Name: transfer_chunks transfer_chunks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transfer_chunks
    ADD CONSTRAINT transfer_chunks_pkey PRIMARY KEY (transfer_id, idx);


--
-- Name: transfer_recipients transfer_recipients_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transfer_recipients
    ADD CONSTRAINT transfer_recipients_pkey PRIMARY KEY (transfer_id, recipient_kind, recipient_id);


--
-- Name: transfers transfers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transfers
    ADD CONSTRAINT transfers_pkey PRIMARY KEY (id);


--
-- Name: user_keys user_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_keys
    ADD CONSTRAINT user_keys_pkey PRIMARY KEY (user_id);


--
-- Name: user_sites user_sites_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.user_sites
    ADD CONSTRAINT user_sites_pkey PRIMARY KEY (user_id);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: api_keys_key_hash_uq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX api_keys_key_hash_uq ON public.api_keys USING btree (key_hash);


--
-- Name: api_keys_owner_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX api_keys_owner_idx ON public.api_keys USING btree (owner_id, created_at_ms);


--
-- Name: audit_log_ts_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX audit_log_ts_idx ON public.audit_log USING btree (ts_ms);


--
-- Name: auth_tokens_expires_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX auth_tokens_expires_idx ON public.auth_tokens USING btree (expires_at_ms);


--
-- Name: auth_tokens_family_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX auth_tokens_family_idx ON public.auth_tokens USING btree (family_id);


--
-- Name: auth_tokens_user_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX auth_tokens_user_idx ON public.auth_tokens USING btree (user_id);


--
-- Name: certificates_revoked_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX certificates_revoked_idx ON public.certificates USING btree (revoked_at) WHERE (revoked_at IS NOT NULL);


--
-- Name: certificates_subject_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX certificates_subject_idx ON public.certificates USING btree (subject_kind, subject_id);


--
-- Name: events_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_at_idx ON public.events USING btree (at_ms);


--
-- Name: events_customer_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_customer_idx ON public.events USING btree (customer_id, id);


--
-- Name: events_host_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX events_host_idx ON public.events USING btree (host_id, id);


--
-- Name: guest_reports_customer_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX guest_reports_customer_idx ON public.guest_reports USING btree (customer_id, received_at_ms DESC);


--
-- Name: guest_reports_guest_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX guest_reports_guest_idx ON public.guest_reports USING btree (guest_id, received_at_ms DESC);


--
-- Name: guest_reports_received_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX guest_reports_received_idx ON public.guest_reports USING btree (received_at_ms);


--
-- Name: guests_customer_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX guests_customer_idx ON public.guests USING btree (customer_id);


--
-- Name: guests_host_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX guests_host_idx ON public.guests USING btree (host_id);


--
-- Name: host_reports_customer_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX host_reports_customer_idx ON public.host_reports USING btree (customer_id, received_at_ms DESC);


--
-- Name: host_reports_host_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX host_reports_host_idx ON public.host_reports USING btree (host_id, received_at_ms DESC);


--
-- Name: host_reports_received_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX host_reports_received_idx ON public.host_reports USING btree (received_at_ms);


--
-- Name: hosts_customer_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX hosts_customer_idx ON public.hosts USING btree (customer_id);


--
-- Name: notification_log_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX notification_log_at_idx ON public.notification_log USING btree (at_ms);


--
-- Name: report_idempotency_received; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX report_idempotency_received ON public.report_idempotency USING btree (received_at_ms);


--
-- Name: signed_ops_host_status_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX signed_ops_host_status_idx ON public.signed_ops USING btree (host_id, status);


--
-- Name: signed_ops_status_expires_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX signed_ops_status_expires_idx ON public.signed_ops USING btree (status, expires_at_ms);


--
-- Name: transfer_recipients_recipient_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX transfer_recipients_recipient_idx ON public.transfer_recipients USING btree (recipient_kind, recipient_id);


--
-- Name: transfers_sender_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX transfers_sender_idx ON public.transfers USING btree (sender_id, created_at_ms DESC);


--
-- Name: transfers_site_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX transfers_site_idx ON public.transfers USING btree (site) WHERE (site IS NOT NULL);


--
-- Name: transfers_status_expires_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX transfers_status_expires_idx ON public.transfers USING btree (status, expires_at_ms);


--
-- Name: users_email_uq; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX users_email_uq ON public.users USING btree (email);


--
-- Name: audit_log audit_log_no_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON public.audit_log FOR EACH ROW EXECUTE FUNCTION public.audit_log_no_update();


--
-- Name: guests guests_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.guests
    ADD CONSTRAINT guests_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id);


--
-- Name: guests guests_host_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.guests
    ADD CONSTRAINT guests_host_id_fkey FOREIGN KEY (host_id) REFERENCES public.hosts(id);


--
-- Name: hosts hosts_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hosts
    ADD CONSTRAINT hosts_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(id);


--
-- Name: hubs hubs_deploy_key_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.hubs
    ADD CONSTRAINT hubs_deploy_key_id_fkey FOREIGN KEY (deploy_key_id) REFERENCES public.deploy_keys(id);


--
-- Name: transfer_chunks transfer_chunks_transfer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transfer_chunks
    ADD CONSTRAINT transfer_chunks_transfer_id_fkey FOREIGN KEY (transfer_id) REFERENCES public.transfers(id);


--
-- Name: transfer_recipients transfer_recipients_transfer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.transfer_recipients
    ADD CONSTRAINT transfer_recipients_transfer_id_fkey FOREIGN KEY (transfer_id) REFERENCES public.transfers(id);


--
-- PostgreSQL database dump complete
--

\unrestrict RbL8IFI5VVwWk45dIuSGLt4UOY68ldMPH39QzkH8B5QL90oAzkrm9cf43pxHUWS

