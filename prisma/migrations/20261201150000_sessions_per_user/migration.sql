-- Sessions are scoped to their caller and get an id of their own; each Initialize (start or resume) is a row of
-- kyc_transaction; the caller's user id is kept sealed; kyc_user_quota counts each caller's Initialize calls.
-- Existing rows are carried over: each session keeps its data and gets its one transaction (seq 1).

-- kyc_session: an id of its own; merchant_biz_id unique per caller
ALTER TABLE "kyc_session" ADD COLUMN "id" UUID NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE "kyc_session" ALTER COLUMN "id" DROP DEFAULT;
ALTER TABLE "kyc_session" ADD COLUMN "user_id_ciphertext" BYTEA,
ADD COLUMN "user_id_key_id" VARCHAR(32),
ADD COLUMN "decided_transaction_id" VARCHAR(64);

-- CreateTable
CREATE TABLE "kyc_transaction" (
    "session_id" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "transaction_id" VARCHAR(64),
    "transaction_url" TEXT,
    "protocol" TEXT,
    "callback_token_hash" CHAR(64) NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "upstream_request_id" VARCHAR(64),
    "error_code" VARCHAR(64),
    "callback_passed" VARCHAR(1),
    "callback_sub_code" VARCHAR(32),
    "callback_at" TIMESTAMPTZ(3),
    "passed" VARCHAR(1),
    "sub_code" VARCHAR(32),
    "checked_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "kyc_transaction_pkey" PRIMARY KEY ("session_id","seq")
);

-- Carry over: each existing session's transaction, callback and verdict become its transaction 1.
INSERT INTO "kyc_transaction" ("session_id", "seq", "transaction_id", "transaction_url", "protocol", "callback_token_hash",
    "expires_at", "upstream_request_id", "error_code", "callback_passed", "callback_sub_code", "callback_at", "passed",
    "sub_code", "checked_at", "created_at", "updated_at")
SELECT "id", 1, "transaction_id", "transaction_url", "protocol", "callback_token_hash", "expires_at", "upstream_request_id",
    CASE WHEN "transaction_id" IS NULL THEN "error_code" END, "callback_passed", "callback_sub_code", "callback_at", "passed",
    "sub_code", "checked_at", "created_at", "updated_at"
FROM "kyc_session";
UPDATE "kyc_session" SET "decided_transaction_id" = "transaction_id" WHERE "passed" IS NOT NULL;

-- What moved to kyc_transaction
ALTER TABLE "kyc_session" DROP COLUMN "transaction_url",
DROP COLUMN "protocol",
DROP COLUMN "callback_token_hash",
DROP COLUMN "callback_passed",
DROP COLUMN "callback_sub_code",
DROP COLUMN "callback_at";

-- Keys
ALTER TABLE "kyc_session" DROP CONSTRAINT "kyc_session_pkey";
ALTER TABLE "kyc_session" ADD CONSTRAINT "kyc_session_pkey" PRIMARY KEY ("id");
DROP INDEX "kyc_session_transaction_id_key";
CREATE UNIQUE INDEX "kyc_session_user_ref_merchant_biz_id_key" ON "kyc_session"("user_ref", "merchant_biz_id");
CREATE INDEX "kyc_session_merchant_biz_id_idx" ON "kyc_session"("merchant_biz_id");
CREATE UNIQUE INDEX "kyc_transaction_transaction_id_key" ON "kyc_transaction"("transaction_id");
ALTER TABLE "kyc_transaction" ADD CONSTRAINT "kyc_transaction_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "kyc_session"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- CreateTable
CREATE TABLE "kyc_user_quota" (
    "user_ref" CHAR(64) NOT NULL,
    "starts" TIMESTAMPTZ(6)[],

    CONSTRAINT "kyc_user_quota_pkey" PRIMARY KEY ("user_ref")
);
