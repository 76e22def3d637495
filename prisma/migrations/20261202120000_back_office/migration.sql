-- The back office: erasure (tombstones; each transaction's deletion at Alibaba), the outbox of merchant events with
-- each delivery attempt, and the append-only audit trail. The tables match prisma/schema.prisma; the functions and
-- triggers at the end are what Prisma's schema cannot express.

-- CreateEnum
CREATE TYPE "UpstreamDeletion" AS ENUM ('none', 'pending', 'deleted', 'absent', 'rejected', 'failed');

-- CreateEnum
CREATE TYPE "EventState" AS ENUM ('pending', 'delivered', 'failed');

-- AlterTable
ALTER TABLE "kyc_session" ALTER COLUMN "user_ref" DROP NOT NULL,
ADD COLUMN     "event_seq" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "erasure_requested_at" TIMESTAMPTZ(3),
ADD COLUMN     "redacted_at" TIMESTAMPTZ(3),
ADD COLUMN     "erasure_completed_at" TIMESTAMPTZ(3);

-- AlterTable
ALTER TABLE "kyc_transaction" ALTER COLUMN "callback_token_hash" DROP NOT NULL,
ADD COLUMN     "upstream_deletion" "UpstreamDeletion",
ADD COLUMN     "upstream_deletion_attempts" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "upstream_deletion_error" VARCHAR(64),
ADD COLUMN     "upstream_deletion_at" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "kyc_event" (
    "id" VARCHAR(36) NOT NULL,
    "session_id" UUID NOT NULL,
    "sequence" INTEGER NOT NULL,
    "type" VARCHAR(32) NOT NULL,
    "data" JSONB NOT NULL,
    "state" "EventState" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_attempt_at" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),

    CONSTRAINT "kyc_event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "kyc_event_delivery" (
    "id" BIGSERIAL NOT NULL,
    "event_id" VARCHAR(36) NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "trigger" VARCHAR(16) NOT NULL,
    "http_status" INTEGER,
    "error" VARCHAR(200),
    "latency_ms" INTEGER NOT NULL,

    CONSTRAINT "kyc_event_delivery_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "kyc_audit" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor" VARCHAR(64) NOT NULL,
    "address" VARCHAR(64),
    "action" VARCHAR(32) NOT NULL,
    "target" VARCHAR(200) NOT NULL,
    "detail" JSONB,

    CONSTRAINT "kyc_audit_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "kyc_session_created_at_idx" ON "kyc_session"("created_at");

-- CreateIndex
CREATE INDEX "kyc_session_erasure_requested_at_idx" ON "kyc_session"("erasure_requested_at");

-- CreateIndex
CREATE INDEX "kyc_event_created_at_idx" ON "kyc_event"("created_at");

-- CreateIndex
CREATE INDEX "kyc_event_state_created_at_idx" ON "kyc_event"("state", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "kyc_event_session_id_sequence_key" ON "kyc_event"("session_id", "sequence");

-- CreateIndex
CREATE INDEX "kyc_event_delivery_event_id_at_idx" ON "kyc_event_delivery"("event_id", "at");

-- CreateIndex
CREATE INDEX "kyc_audit_at_idx" ON "kyc_audit"("at");

-- CreateIndex
CREATE INDEX "kyc_audit_target_id_idx" ON "kyc_audit"("target", "id");

-- CreateIndex
CREATE INDEX "kyc_audit_actor_id_idx" ON "kyc_audit"("actor", "id");

-- AddForeignKey
ALTER TABLE "kyc_event" ADD CONSTRAINT "kyc_event_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "kyc_session"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "kyc_event_delivery" ADD CONSTRAINT "kyc_event_delivery_event_id_fkey" FOREIGN KEY ("event_id") REFERENCES "kyc_event"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Not expressible in schema.prisma. Each function keeps the search_path it was created with (this migration's
-- schema), so it finds its tables whatever the search_path of the connection that fires it.

-- An event's id: stable per session and status (as the service computed it before the outbox).
CREATE FUNCTION "kyc_event_id"(session UUID, key TEXT) RETURNS VARCHAR(36)
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT
AS $$ SELECT 'evt_' || left(encode(sha256(convert_to(session::text || ':' || key, 'UTF8')), 'hex'), 32) $$;

-- The outbox: the statement that changes a session's status (or completes its erasure) writes the event reporting
-- it, with the session's next sequence. An event whose id exists already (the same status again: a session expired,
-- resumed and expired again) is not written twice, and takes no sequence.
CREATE FUNCTION "kyc_session_event"() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
  status_type TEXT := CASE WHEN NEW.status IS DISTINCT FROM OLD.status THEN
    CASE NEW.status
      WHEN 'verifying' THEN 'kyc.session.verifying'
      WHEN 'expired' THEN 'kyc.session.expired'
      WHEN 'passed' THEN 'kyc.session.finished'
      WHEN 'failed' THEN 'kyc.session.finished'
      WHEN 'error' THEN 'kyc.session.finished'
    END
  END;
  data JSONB := jsonb_strip_nulls(jsonb_build_object(
    'id', NEW.id,
    'merchantBizId', NEW.merchant_biz_id,
    'status', NEW.status,
    'passed', NEW.passed,
    'subCode', NEW.sub_code
  )) || jsonb_build_object('transactionId', COALESCE(NEW.decided_transaction_id, NEW.transaction_id));
BEGIN
  IF status_type IS NOT NULL THEN
    INSERT INTO kyc_event (id, session_id, sequence, type, data)
    VALUES (kyc_event_id(NEW.id, NEW.status::text), NEW.id, NEW.event_seq + 1, status_type, data)
    ON CONFLICT (id) DO NOTHING;
    IF FOUND THEN NEW.event_seq := NEW.event_seq + 1; END IF;
  END IF;
  IF NEW.erasure_completed_at IS NOT NULL AND OLD.erasure_completed_at IS NULL THEN
    INSERT INTO kyc_event (id, session_id, sequence, type, data)
    VALUES (
      kyc_event_id(NEW.id, 'redacted'), NEW.id, NEW.event_seq + 1, 'kyc.session.redacted',
      data || jsonb_build_object(
        'redactedAt', to_char(NEW.redacted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'upstreamDeletions', (
          SELECT COALESCE(jsonb_object_agg(state, n), '{}'::jsonb)
            FROM (SELECT upstream_deletion::text AS state, count(*) AS n FROM kyc_transaction
                   WHERE session_id = NEW.id AND upstream_deletion IS NOT NULL GROUP BY 1) d
        )
      )
    )
    ON CONFLICT (id) DO NOTHING;
    IF FOUND THEN NEW.event_seq := NEW.event_seq + 1; END IF;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER "kyc_session_event" BEFORE UPDATE ON "kyc_session"
FOR EACH ROW
WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.erasure_completed_at IS DISTINCT FROM OLD.erasure_completed_at)
EXECUTE FUNCTION "kyc_session_event"();

-- The audit trail is append-only: no UPDATE, no TRUNCATE, and a DELETE only of rows older than the retention the
-- deleting transaction names (SET LOCAL kyc.audit_retention_days = N, N ≥ 1: what AUDIT_RETENTION_DAYS does).
-- A database owner can still drop the trigger: this guards against mistakes and casual tampering, not against
-- the owner (grant the service a role that is not the owner to go further).
CREATE FUNCTION "kyc_audit_append_only"() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
  days INTEGER := NULLIF(current_setting('kyc.audit_retention_days', true), '')::INTEGER;
BEGIN
  IF TG_OP = 'DELETE' AND days >= 1 AND OLD.at < now() - make_interval(days => days) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'kyc_audit is append-only: % refused', TG_OP USING ERRCODE = '42501';
END
$$;

CREATE TRIGGER "kyc_audit_append_only" BEFORE UPDATE OR DELETE ON "kyc_audit"
FOR EACH ROW EXECUTE FUNCTION "kyc_audit_append_only"();

CREATE TRIGGER "kyc_audit_no_truncate" BEFORE TRUNCATE ON "kyc_audit"
FOR EACH STATEMENT EXECUTE FUNCTION "kyc_audit_append_only"();
