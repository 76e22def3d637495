-- CreateEnum
CREATE TYPE "SessionStatus" AS ENUM ('pending', 'passed', 'failed', 'error');

-- CreateTable
CREATE TABLE "kyc_session" (
    "merchant_biz_id" VARCHAR(32) NOT NULL,
    "user_ref" CHAR(64) NOT NULL,
    "status" "SessionStatus" NOT NULL DEFAULT 'pending',
    "doc_type" VARCHAR(16) NOT NULL,
    "transaction_id" VARCHAR(64),
    "transaction_url" TEXT,
    "protocol" TEXT,
    "callback_token_hash" CHAR(64) NOT NULL,
    "passed" VARCHAR(1),
    "sub_code" VARCHAR(32),
    "error_code" VARCHAR(64),
    "upstream_request_id" VARCHAR(64),
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "completed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "kyc_session_pkey" PRIMARY KEY ("merchant_biz_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "kyc_session_transaction_id_key" ON "kyc_session"("transaction_id");

-- CreateIndex
CREATE INDEX "kyc_session_status_expires_at_idx" ON "kyc_session"("status", "expires_at");
