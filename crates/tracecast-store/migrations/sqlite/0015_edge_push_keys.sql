-- Trust boundary (issue 25). Each edge signs its pushes to homes and
-- kiosks with a key of its own (the buyer holds the purchase ticket, so
-- a ticket alone cannot authorise a push); it tells the origin the public
-- half with its state, and the origin writes it into tickets for orders
-- through a home or kiosk.
ALTER TABLE edges ADD COLUMN push_key TEXT;
