CREATE TABLE t (id INT, note TEXT DEFAULT 'unterminated);
DROP TABLE customers;
