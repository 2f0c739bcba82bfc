use super::*;

fn fences(dir: &Path, state: &Path) -> Fences {
    Fences {
        primary: dir.join(FENCES),
        overflow: Some(state.join("fences-test")),
    }
}

fn mark(fences: &Fences, repo: &str, resource: Resource) -> io::Result<Mark> {
    fences.state(repo, resource).map(|s| s.mark)
}

#[test]
fn a_move_changes_the_marks_it_covers_and_no_others() -> io::Result<()> {
    use Resource::*;
    let dir = tempfile::tempdir()?;
    let fences = fences(dir.path(), dir.path());
    assert_eq!(fences.ensure(false)?, None);
    let covered = [
        ("o/a", Issues),
        ("o/a", Other),
        ("o/b", Search),
        ("o/a", Releases),
        ("o/b", Issues),
    ];
    let before: Vec<Mark> = covered
        .iter()
        .map(|(repo, r)| mark(&fences, repo, *r))
        .collect::<io::Result<_>>()?;
    assert_eq!(fences.state("o/a", Issues)?.invalidated_at_ms, 0);
    // `issue create -R o/a`: its issues, its unclassified answers, every search.
    let issue_create = Resources::of(&[Issues, Search]);
    fences.move_for(
        Target::Resources("o/a", issue_create),
        now_ms(),
        InvalidationId(1),
    )?;
    let after: Vec<Mark> = covered
        .iter()
        .map(|(repo, r)| mark(&fences, repo, *r))
        .collect::<io::Result<_>>()?;
    let moved: Vec<bool> = before.iter().zip(&after).map(|(b, a)| b != a).collect();
    assert_eq!(moved, [true, true, true, false, false]);
    assert!(fences.state("o/a", Issues)?.invalidated_at_ms > 0);

    fences.move_for(Target::Repo("o/a"), now_ms(), InvalidationId(2))?;
    assert_ne!(
        mark(&fences, "o/a", Releases)?,
        after[3],
        "the whole repository"
    );
    assert_eq!(mark(&fences, "o/b", Issues)?, after[4]);
    fences.move_for(Target::All, now_ms(), InvalidationId(3))?;
    assert_ne!(mark(&fences, "o/b", Issues)?, after[4], "everything");
    Ok(())
}

#[test]
fn moves_in_the_overflow_count_until_folded_and_after() -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let fences = fences(dir.path(), &dir.path().join("state"));
    fences.ensure(false)?;
    let before = fences.state("o/a", Resource::Issues)?;
    // A primary that cannot be written: the move lands in the overflow file.
    let read_only = Fences {
        primary: dir.path().join("missing-dir").join(FENCES),
        ..fences.clone()
    };
    assert_eq!(
        read_only.move_for(Target::Repo("o/a"), now_ms(), InvalidationId(4))?,
        Moved::InOverflow
    );
    let moved = fences.state("o/a", Resource::Issues)?;
    assert_ne!(moved.mark, before.mark);
    fences.fold_overflow()?;
    let folded = fences.state("o/a", Resource::Issues)?;
    assert_ne!(
        folded.mark, before.mark,
        "folding never brings an old mark back"
    );
    assert!(folded.invalidated_at_ms >= moved.invalidated_at_ms);
    assert!(!dir.path().join("state/fences-test").exists());
    Ok(())
}

#[test]
fn a_fence_names_its_last_invalidation_and_when_the_others_were() -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let fences = fences(dir.path(), dir.path());
    fences.ensure(false)?;
    let issues = Resources::of(&[Resource::Issues]);
    let write = Selector::Resources {
        repo: "o/a".into(),
        resources: issues,
    };
    fences.invalidate_at(&write, 1_000)?;
    let first = fences.state("o/a", Resource::Issues)?;
    assert_eq!(first.last, Some(InvalidationId::of(&write, 1_000)));
    assert_eq!(first.before_last_ms, 0);
    // A peer's write heard later, here at 5_000.
    let heard = InvalidationId(77);
    fences.move_for(Target::Repo("o/a"), 5_000, heard)?;
    let second = fences.state("o/a", Resource::Issues)?;
    assert_eq!(
        (second.last, second.invalidated_at_ms),
        (Some(heard), 5_000)
    );
    assert_eq!(second.before_last_ms, 1_000, "the issues slot's own write");
    // The same invalidation again (gossip, then a catch-up): it stays the last, and its
    // earlier arrival does not count as another.
    fences.move_for(Target::Repo("o/a"), 6_000, heard)?;
    let again = fences.state("o/a", Resource::Issues)?;
    assert_eq!((again.last, again.before_last_ms), (Some(heard), 1_000));
    assert_ne!(again.mark, second.mark, "every move changes the mark");
    // An older one arriving late is not the last, but an entry must be newer than it too.
    fences.move_for(Target::Repo("o/a"), 3_000, InvalidationId(5))?;
    let late = fences.state("o/a", Resource::Issues)?;
    assert_eq!((late.last, late.invalidated_at_ms), (Some(heard), 6_000));
    assert_eq!(late.before_last_ms, 3_000);
    // One that moves every repository: the last for all, the rest before it.
    fences.move_for(Target::All, 9_000, InvalidationId(9))?;
    let all = fences.state("o/a", Resource::Issues)?;
    assert_eq!(
        (all.last, all.before_last_ms),
        (Some(InvalidationId(9)), 6_000)
    );
    Ok(())
}

#[test]
fn folding_keeps_the_last_invalidation_and_the_ones_before() {
    let cache = Slot::default().record(1_000, 1).record(4_000, 2);
    let overflow = Slot::default().record(3_000, 3);
    let folded = cache.merge(Slot {
        generation: 1,
        ..overflow
    });
    assert_eq!(
        (folded.last, folded.at_ms, folded.before_ms),
        (2, 4_000, 3_000)
    );
    let later = Slot {
        generation: 1,
        ..Slot::default().record(7_000, 8)
    };
    let folded = cache.merge(later);
    assert_eq!(
        (folded.last, folded.at_ms, folded.before_ms),
        (8, 7_000, 4_000)
    );
}

#[test]
fn an_earlier_format_is_replaced_quietly_with_a_floor() -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let fences = fences(dir.path(), dir.path());
    let mut old = vec![0u8; HEADER + SLOTS * 16];
    old[..16].copy_from_slice(MAGIC);
    old[16..20].copy_from_slice(&1u32.to_le_bytes());
    old[20..24].copy_from_slice(&(SLOTS as u32).to_le_bytes());
    std::fs::write(dir.path().join(FENCES), old)?;
    assert_eq!(fences.ensure(true)?, None, "no warning for an upgrade");
    let state = fences.state("o/a", Resource::Other)?;
    assert!(state.invalidated_at_ms > 0, "a floor");
    assert_eq!(state.last, None, "a floor names no invalidation");
    Ok(())
}

#[test]
fn a_damaged_file_is_replaced_with_a_floor_and_a_new_epoch() -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    let fences = fences(dir.path(), dir.path());
    fences.ensure(false)?;
    let before = fences.state("o/a", Resource::Other)?;
    std::fs::write(dir.path().join(FENCES), b"garbage")?;
    assert!(
        fences.state("o/a", Resource::Other).is_err(),
        "unreadable, not zero"
    );
    assert!(fences.ensure(true)?.is_some_and(|w| w.contains("damaged")));
    let after = fences.state("o/a", Resource::Other)?;
    assert_ne!(after.mark, before.mark);
    assert!(
        after.invalidated_at_ms > 0,
        "a floor: older remote entries are refused"
    );
    Ok(())
}
