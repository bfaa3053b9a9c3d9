-- Before the simulator writes day D again: the users who signed up on D (ids in the day's block
-- [first_user, end_user)) and their latent truth.
DELETE FROM warehouse.users WHERE user_id >= %(first_user)s AND user_id < %(end_user)s;
DELETE FROM sim.users WHERE user_id >= %(first_user)s AND user_id < %(end_user)s;
DELETE FROM sim.user_taste WHERE user_id >= %(first_user)s AND user_id < %(end_user)s;
DELETE FROM sim.user_publication_affinity WHERE user_id >= %(first_user)s AND user_id < %(end_user)s;
