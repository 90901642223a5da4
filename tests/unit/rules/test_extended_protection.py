from dagcheck.rules.extended_protection import expected_token_checking, split_vdir_name, supports_extended_protection


def test_ep_matrix_front_and_back_end() -> None:
    assert expected_token_checking("Autodiscover", "Default Web Site") == "None"
    assert expected_token_checking("EWS", "Default Web Site") == "Allow"
    assert expected_token_checking("EWS", "Exchange Back End") == "Require"
    assert expected_token_checking("PowerShell", "Default Web Site") == "None"
    assert expected_token_checking("mapi", "Exchange Back End") is None
    assert split_vdir_name("owa (Default Web Site)") == ("owa", "Default Web Site")


def test_ep_supported_builds() -> None:
    assert supports_extended_protection((15, 2, 1544, 4))
    assert supports_extended_protection((15, 2, 1118, 11)) and not supports_extended_protection((15, 2, 1118, 7))
    assert supports_extended_protection((15, 2, 986, 28)) and not supports_extended_protection((15, 2, 986, 5))
    assert supports_extended_protection((15, 1, 2507, 11)) and not supports_extended_protection((15, 1, 2375, 7))
