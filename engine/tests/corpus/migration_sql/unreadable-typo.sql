ALTER TABLE customers FROB COLUMN phone;
