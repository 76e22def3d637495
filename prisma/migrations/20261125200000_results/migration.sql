-- AlterEnum
ALTER TYPE "SessionStatus" ADD VALUE 'verifying';
ALTER TYPE "SessionStatus" ADD VALUE 'expired';

-- AlterTable
ALTER TABLE "kyc_session" ADD COLUMN     "callback_at" TIMESTAMPTZ(3),
ADD COLUMN     "callback_passed" VARCHAR(1),
ADD COLUMN     "callback_sub_code" VARCHAR(32),
ADD COLUMN     "checked_at" TIMESTAMPTZ(3),
ADD COLUMN     "details_ciphertext" BYTEA,
ADD COLUMN     "details_key_id" VARCHAR(32),
ADD COLUMN     "details_purged_at" TIMESTAMPTZ(3),
ADD COLUMN     "details_stored_at" TIMESTAMPTZ(3);

-- CreateIndex
CREATE INDEX "kyc_session_details_stored_at_idx" ON "kyc_session"("details_stored_at");
