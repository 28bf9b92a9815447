/* cleanup */ -- harmless, says the comment
CREATE TABLE t (id INT);
/* ; */ DrOp /* why not */ INDEX
    idx_customers_phone;
