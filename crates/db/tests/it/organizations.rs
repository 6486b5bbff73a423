use db::organizations::{
    MEMBER_KEY, NAME_UNIQUE, NewOrganization, ONE_ORGANIZATION_PER_USER, OrganizationChangeset,
    ROLE_MEMBER, ROLE_OWNER, add_member, delete_organization, find_organization,
    insert_organization, list_members, list_organizations, membership_of, remove_member,
    set_organization_tier, set_owner, update_organization,
};
use db::testing::TestDatabase;
use db::tiers::{NewTier, insert_tier};
use db::{Error, OrganizationId, Page};

fn new_org(name: &str) -> NewOrganization {
    NewOrganization {
        id: OrganizationId::new(),
        name: name.to_owned(),
        description: None,
        tier_id: None,
    }
}

#[tokio::test]
async fn organizations_are_created_listed_renamed_and_deleted() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let acme = insert_organization(&mut conn, &new_org("Acme"))
        .await
        .unwrap();
    insert_organization(&mut conn, &new_org("Beta_Corp"))
        .await
        .unwrap();
    insert_organization(&mut conn, &new_org("Gamma"))
        .await
        .unwrap();

    let err = insert_organization(&mut conn, &new_org("ACME"))
        .await
        .unwrap_err();
    assert!(err.is_conflict_on(NAME_UNIQUE), "{err:?}");

    let all = list_organizations(&mut conn, None, Page::new(1, 2))
        .await
        .unwrap();
    assert_eq!(all.total, 3);
    let names: Vec<_> = all.items.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["Acme", "Beta_Corp"]);
    // `_` is matched literally, not as a wildcard.
    let found = list_organizations(&mut conn, Some("a_c"), Page::default())
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.items[0].name, "Beta_Corp");
    let none = list_organizations(&mut conn, Some("a%c"), Page::default())
        .await
        .unwrap();
    assert_eq!(none.total, 0);

    let renamed = update_organization(
        &mut conn,
        acme.id,
        &OrganizationChangeset {
            name: Some("Acme Inc".into()),
            description: Some(Some("rockets".into())),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(renamed.name, "Acme Inc");
    assert_eq!(renamed.description.as_deref(), Some("rockets"));
    assert!(
        update_organization(
            &mut conn,
            OrganizationId::new(),
            &OrganizationChangeset::default()
        )
        .await
        .unwrap()
        .is_none()
    );

    let user = crate::some_user(&mut conn).await;
    add_member(&mut conn, acme.id, user).await.unwrap();
    assert!(delete_organization(&mut conn, acme.id).await.unwrap());
    assert!(!delete_organization(&mut conn, acme.id).await.unwrap());
    assert!(
        find_organization(&mut conn, acme.id)
            .await
            .unwrap()
            .is_none()
    );
    // The member's membership went with it; the user stays.
    assert!(membership_of(&mut conn, user).await.unwrap().is_none());
    assert!(
        db::users::find_user(&mut conn, user)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_user_is_in_at_most_one_organization() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let acme = insert_organization(&mut conn, &new_org("Acme"))
        .await
        .unwrap();
    let other = insert_organization(&mut conn, &new_org("Other"))
        .await
        .unwrap();
    let user = crate::some_user(&mut conn).await;

    let member = add_member(&mut conn, acme.id, user).await.unwrap();
    assert_eq!(member.user_id, user);
    assert_eq!(member.role, ROLE_MEMBER);
    assert_eq!(member.first_name, "Ada");

    let again = add_member(&mut conn, acme.id, user).await.unwrap_err();
    assert!(
        again.is_conflict_on(MEMBER_KEY) || again.is_conflict_on(ONE_ORGANIZATION_PER_USER),
        "{again:?}"
    );
    let elsewhere = add_member(&mut conn, other.id, user).await.unwrap_err();
    assert!(
        elsewhere.is_conflict_on(ONE_ORGANIZATION_PER_USER),
        "{elsewhere:?}"
    );
    let unknown = add_member(&mut conn, acme.id, db::UserId::new())
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::ForeignKey { .. }), "{unknown:?}");

    let page = list_members(&mut conn, acme.id, Page::default())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].user_id, user);

    assert!(remove_member(&mut conn, acme.id, user).await.unwrap());
    assert!(!remove_member(&mut conn, acme.id, user).await.unwrap());
    add_member(&mut conn, other.id, user).await.unwrap();
    assert_eq!(
        membership_of(&mut conn, user)
            .await
            .unwrap()
            .map(|m| m.organization_id),
        Some(other.id)
    );
}

#[tokio::test]
async fn the_owner_is_a_member_and_ownership_moves() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let acme = insert_organization(&mut conn, &new_org("Acme"))
        .await
        .unwrap();
    let other = insert_organization(&mut conn, &new_org("Other"))
        .await
        .unwrap();
    let (ada, bob, eve) = (
        crate::some_user(&mut conn).await,
        crate::some_user(&mut conn).await,
        crate::some_user(&mut conn).await,
    );
    add_member(&mut conn, other.id, eve).await.unwrap();

    let org = set_owner(&mut conn, acme.id, Some(ada))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.owner_id, Some(ada));
    add_member(&mut conn, acme.id, bob).await.unwrap();
    let org = set_owner(&mut conn, acme.id, Some(bob))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.owner_id, Some(bob));
    let roles: Vec<_> = list_members(&mut conn, acme.id, Page::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    assert_eq!(
        roles,
        [(ada, ROLE_MEMBER.to_owned()), (bob, ROLE_OWNER.to_owned())]
    );

    let err = set_owner(&mut conn, acme.id, Some(eve)).await.unwrap_err();
    assert!(err.is_conflict_on(ONE_ORGANIZATION_PER_USER), "{err:?}");

    // Removing the owner clears the owner.
    assert!(remove_member(&mut conn, acme.id, bob).await.unwrap());
    let org = find_organization(&mut conn, acme.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.owner_id, None);
}

#[tokio::test]
async fn an_organization_has_a_tier() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let acme = insert_organization(&mut conn, &new_org("Acme"))
        .await
        .unwrap();
    let team = insert_tier(
        &mut conn,
        &NewTier {
            name: "team".into(),
            ..NewTier::default()
        },
    )
    .await
    .unwrap();
    let org = set_organization_tier(&mut conn, acme.id, Some(team.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.tier_id, Some(team.id));
    let err = set_organization_tier(&mut conn, acme.id, Some(db::TierId::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ForeignKey { .. }), "{err:?}");
    let org = set_organization_tier(&mut conn, acme.id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.tier_id, None);
    assert!(
        set_organization_tier(&mut conn, OrganizationId::new(), None)
            .await
            .unwrap()
            .is_none()
    );
}
