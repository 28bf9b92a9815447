ＤＲＯＰ TABLE customers;
