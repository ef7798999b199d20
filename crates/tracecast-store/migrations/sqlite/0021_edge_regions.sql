-- Where each edge stands (issue 30, DESIGN.md "001" step 2): with no edge
-- holding a rendition, designation prefers the one nearest the buyer.
-- Labels widest first (eu-west-1); NULL: undeclared, farther than any.
ALTER TABLE edges ADD COLUMN region TEXT;
