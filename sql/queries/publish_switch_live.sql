-- Point serving.live at a batch (publish and rollback): readers see it from the commit on.
UPDATE serving.live SET batch_id = %s, switched_at = now()
