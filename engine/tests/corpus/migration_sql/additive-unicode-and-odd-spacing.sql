create	table "Ünïcødé 表" ("has""quote" text default 'it''s; -- 🙂', 列 int)
;;
ALTER   type   mood
  add value 'happy';;;
/* nested /* DROP TABLE x */ still a comment */ Create Index "we;ird" ON "Ünïcødé 表" (列)
